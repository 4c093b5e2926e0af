"""Calibration history: after every start, what vLLM reported next to what we predicted.

The supervisor calls ``record_start_report`` once an engine is ready (the daemon wires it as the
supervisor's ``on_started`` hook through ``Optimizer.on_engine_started``). Rows live in the
``optimizer_calibration`` table (migration 0004); ``correction_for`` turns the latest rows of a
model + vLLM version into the ``Correction`` later estimates apply. Recording never raises
for a log it cannot read: missing lines are stored as unknown.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from vllm_mcp.core.calibration import Observation, correction_from
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.gpu_catalog import Device
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.vram import Correction, MemoryEstimate, estimate_memory
from vllm_mcp.optimizer.gpus import host_device, probe_nvml
from vllm_mcp.optimizer.model_files import load_model_dims
from vllm_mcp.optimizer.start_report import StartReport, cache_config_labels, parse_start_report

__all__ = [
    "CalibrationEntry",
    "Database",
    "correction_for",
    "history",
    "latest_version",
    "record_start_report",
]


class Database(Protocol):
    """What this module needs of ``vllm_mcp.store.Database`` (a sibling layer it may not import):
    the daemon hands its one writer in."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ...) -> list[sqlite3.Row]: ...


UNKNOWN_VERSION = "unknown"


@dataclass(frozen=True)
class CalibrationEntry:
    id: int
    at: float
    model_key: str
    vllm_version: str
    device: str
    platform: str
    config: dict[str, Any]
    observation: Observation
    report: dict[str, Any]

    @property
    def errors(self) -> dict[str, float | None]:
        return self.observation.errors()


def _engine_config(config: EngineConfig | EngineSpec | Sequence[str]) -> EngineConfig:
    if isinstance(config, EngineConfig):
        return config
    if isinstance(config, EngineSpec):
        return EngineConfig.from_spec(config)
    return EngineConfig.from_argv(list(config))


def _default_device(report: StartReport) -> Device:
    if report.device_kind in (None, "CPU"):
        return host_device()
    probe = probe_nvml()
    return probe.gpus[0] if probe.gpus else host_device()


def _reported_residual(est: MemoryEstimate, report: StartReport, device: Device) -> int | None:
    """Activation + overhead as vLLM's profiler left them: requested − KV − weights − graphs."""
    util = est.config.gpu_memory_utilization
    if util is None or device.platform == "cpu" or report.model_loading_bytes is None:
        return None
    kv = report.available_kv_bytes
    if kv is None and report.num_blocks is not None:
        kv = report.num_blocks * est.kv.bytes_per_block
    if kv is None:
        return None
    requested = math.ceil(device.memory_total_bytes * util)
    graphs = report.graph_estimate_bytes or 0
    residual = requested - kv - report.model_loading_bytes - graphs
    return residual if residual > 0 else None


def observe(est: MemoryEstimate, report: StartReport, device: Device) -> Observation:
    return Observation(
        predicted_kv_tokens=est.kv.tokens,
        reported_kv_tokens=report.kv_cache_tokens,
        predicted_weights_bytes=est.weights_bytes,
        reported_weights_bytes=report.model_loading_bytes,
        predicted_graph_bytes=est.cuda_graph_bytes,
        reported_graph_bytes=report.graph_bytes,
        predicted_residual_bytes=est.activation_bytes + est.overhead_bytes,
        reported_residual_bytes=_reported_residual(est, report, device),
        fixed_pool=est.config.kv_cache_memory_bytes is not None,
    )


def record_start_report(
    db: Database,
    model_key: str,
    vllm_version: str | None,
    engine_config: EngineConfig | EngineSpec | Sequence[str],
    log_text: str,
    cache_config_info: Mapping[str, str] | str | None = None,
    *,
    dims: ModelDims | None = None,
    device: Device | None = None,
) -> CalibrationEntry | None:
    """Record one start; returns the stored entry, or ``None`` when the log has no KV line.

    ``cache_config_info`` is the gauge's labels, or a whole ``/metrics`` page to read them from.
    ``dims`` defaults to the model's files (``model_key`` as a path or cached HF id); ``device``
    to the host (CPU backend) or the first NVML GPU, following what the log reports.
    """
    labels = (
        cache_config_labels(cache_config_info) if isinstance(cache_config_info, str) else cache_config_info
    )
    report = parse_start_report(log_text, labels)
    if not report.has_kv:
        return None
    config = _engine_config(engine_config)
    if report.max_model_len is not None and config.max_model_len is None:
        config = config.with_(max_model_len=report.max_model_len)
    dims = dims or load_model_dims(model_key)
    device = device or _default_device(report)
    est = estimate_memory(dims, config, device)
    obs = observe(est, report, device)
    version = vllm_version or report.vllm_version or UNKNOWN_VERSION
    at = time.time()
    with db.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO optimizer_calibration (at, model_key, vllm_version, device, platform, fixed_pool, "
            "config, predicted_kv_tokens, reported_kv_tokens, predicted_weights_bytes, "
            "reported_weights_bytes, predicted_graph_bytes, reported_graph_bytes, "
            "predicted_residual_bytes, reported_residual_bytes, report) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at, model_key, version, device.name, device.platform, int(obs.fixed_pool),
                json.dumps(config.to_dict()), obs.predicted_kv_tokens, obs.reported_kv_tokens,
                obs.predicted_weights_bytes, obs.reported_weights_bytes, obs.predicted_graph_bytes,
                obs.reported_graph_bytes, obs.predicted_residual_bytes, obs.reported_residual_bytes,
                json.dumps(report.to_dict()),
            ),
        )  # fmt: skip
        row_id = int(cur.lastrowid or 0)
    return CalibrationEntry(
        row_id, at, model_key, version, device.name, device.platform, config.to_dict(), obs, report.to_dict()
    )


def _entry(row: Any) -> CalibrationEntry:
    obs = Observation(
        predicted_kv_tokens=row["predicted_kv_tokens"],
        reported_kv_tokens=row["reported_kv_tokens"],
        predicted_weights_bytes=row["predicted_weights_bytes"],
        reported_weights_bytes=row["reported_weights_bytes"],
        predicted_graph_bytes=row["predicted_graph_bytes"],
        reported_graph_bytes=row["reported_graph_bytes"],
        predicted_residual_bytes=row["predicted_residual_bytes"],
        reported_residual_bytes=row["reported_residual_bytes"],
        fixed_pool=bool(row["fixed_pool"]),
    )
    return CalibrationEntry(
        id=row["id"],
        at=row["at"],
        model_key=row["model_key"],
        vllm_version=row["vllm_version"],
        device=row["device"],
        platform=row["platform"],
        config=json.loads(row["config"]),
        observation=obs,
        report=json.loads(row["report"]),
    )


def history(
    db: Database, model_key: str | None = None, vllm_version: str | None = None, limit: int = 50
) -> list[CalibrationEntry]:
    """Stored starts, newest first, optionally for one model (and one vLLM version)."""
    where, params = [], []
    if model_key is not None:
        where.append("model_key = ?")
        params.append(model_key)
    if vllm_version is not None:
        where.append("vllm_version = ?")
        params.append(vllm_version)
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    rows = db.query(
        f"SELECT * FROM optimizer_calibration {clause}ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed columns
        (*params, max(1, min(limit, 1000))),
    )
    return [_entry(r) for r in rows]


def latest_version(db: Database, model_key: str) -> str | None:
    """The vLLM version of the newest recorded start of ``model_key`` (the one installed now,
    in practice): estimates are corrected with that version's history."""
    rows = db.query(
        "SELECT vllm_version FROM optimizer_calibration WHERE model_key = ? ORDER BY id DESC LIMIT 1",
        (model_key,),
    )
    return str(rows[0]["vllm_version"]) if rows else None


def correction_for(
    db: Database, model_key: str, vllm_version: str | None, *, platform: str | None = None, window: int = 5
) -> Correction:
    """The correction learnt from the latest ``window`` starts of this model + vLLM version."""
    entries = [
        e
        for e in history(db, model_key, vllm_version, limit=window * 4)
        if platform is None or e.platform == platform
    ][:window]
    return correction_from([e.observation for e in reversed(entries)], window)
