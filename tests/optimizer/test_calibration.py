"""Calibration: a start is recorded in SQLite and later estimates of that model learn from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.optimizer.test_start_report import GPU_LOG
from vllm_mcp.core.calibration import Observation, correction_from
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.gpu_catalog import Device, GiB, MiB, parse_inventory
from vllm_mcp.core.model_catalog import reference_model
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.vram import estimate_memory
from vllm_mcp.optimizer.calibration import correction_for, history, record_start_report
from vllm_mcp.store import Database

DATA = Path(__file__).parent / "data"
HOST = Device(0, "host CPU", 24 * GiB, 20 * GiB, platform="cpu", source="host")
TINY = ModelDims(
    "tiny",
    2,
    128,
    4,
    2,
    32,
    2048,
    557_696,
    dtype="float32",
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "state.db")


def test_a_real_cpu_start_is_recorded_with_zero_kv_error(db: Database) -> None:
    log = (DATA / "vllm-cpu-fp32-len2000.log").read_text()
    metrics = (DATA / "cache_config_info-fp32-len2000.prom").read_text()
    argv = ["--dtype", "float32", "--max-model-len", "2000", "--kv-cache-memory-bytes", str(64 * MiB)]
    entry = record_start_report(db, "tiny", None, argv, log, metrics, dims=TINY, device=HOST)
    assert entry is not None
    assert entry.vllm_version == "0.32.0"  # read from the log when the caller does not know it
    assert entry.observation.predicted_kv_tokens == entry.observation.reported_kv_tokens == 64_000
    assert entry.errors["kv_tokens"] == 0.0
    assert entry.errors["weights"] is None  # the CPU backend does not report it
    stored = history(db, "tiny")
    assert [e.id for e in stored] == [entry.id]
    assert stored[0].report["num_blocks"] == 512
    assert stored[0].config["max_model_len"] == 2000


def test_a_log_without_a_kv_line_records_nothing(db: Database) -> None:
    assert (
        record_start_report(
            db, "tiny", "0.32.0", EngineConfig(), "ValueError: boom", None, dims=TINY, device=HOST
        )
        is None
    )
    assert history(db) == []


def test_gpu_starts_correct_later_estimates_of_the_same_model_and_version(db: Database) -> None:
    dims = reference_model("llama-3.1-8b")
    assert dims is not None
    h100 = parse_inventory("H100-80GB")[0]
    cfg = EngineConfig(tensor_parallel_size=2, max_model_len=8192)
    raw = estimate_memory(dims, cfg, h100)
    for _ in range(3):
        entry = record_start_report(db, dims.name, "0.32.0", cfg, GPU_LOG, None, dims=dims, device=h100)
        assert entry is not None
    assert entry.observation.reported_weights_bytes == int(7.52 * GiB)
    assert entry.observation.reported_residual_bytes is not None
    corr = correction_for(db, dims.name, "0.32.0")
    assert corr.samples == 3
    assert corr.weights == pytest.approx(int(7.52 * GiB) / raw.weights_bytes)
    corrected = estimate_memory(dims, cfg, h100, correction=corr)
    # After learning, the predicted KV capacity lands on what vLLM reported (1,017,408 tokens).
    raw_err = abs(raw.kv.tokens - 1_017_408) / 1_017_408
    new_err = abs(corrected.kv.tokens - 1_017_408) / 1_017_408
    assert new_err < raw_err and new_err < 0.01
    assert correction_for(db, dims.name, "0.31.0").is_identity  # another vLLM version learns apart


def test_correction_is_the_clamped_median_of_the_latest_window() -> None:
    def obs(weights: int, tokens: int) -> Observation:
        return Observation(1000, tokens, 100, weights, fixed_pool=True)

    corr = correction_from([obs(900, 1), obs(110, 1000), obs(120, 1100), obs(130, 1200)], window=3)
    assert corr.weights == pytest.approx(1.2)
    assert corr.kv_tokens == pytest.approx(1.1)
    assert correction_from([obs(100_000, 1000)]).weights == 4.0  # clamped
    assert correction_from([]).is_identity
