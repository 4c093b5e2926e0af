"""Predicted vs reported KV capacity on real vLLM: the configurations, the runner, the table.

Shared by the real-vLLM test (tests/optimizer/test_accuracy_vllm.py, ±3%) and the bench entry
``optimizer-accuracy`` (P8). Each case starts the real ``vllm serve`` of the test bed (one at a
time: every start costs 20-35 s on a busy 2-core box), reads ``CPU KV cache size: N tokens`` from
its log and ``vllm:cache_config_info`` from ``/metrics``, and compares them with the estimator's
prediction for the very same argv.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.testbed import REPO, running_vllm, serve_argv, tiny_model
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.vram import estimate_memory
from vllm_mcp.optimizer.gpus import host_device
from vllm_mcp.optimizer.model_files import load_model_dims
from vllm_mcp.optimizer.start_report import StartReport, cache_config_labels, parse_start_report

MiB = 1 << 20
TOLERANCE = 0.03


@dataclass(frozen=True)
class Case:
    name: str
    variant: str | None  # scripts/build_tiny_model.py --variant NAME:key=value,… (None: the base model)
    flags: tuple[str, ...]

    @property
    def model_name(self) -> str:
        return self.variant.split(":", 1)[0] if self.variant else "tiny-llama"


CASES: tuple[Case, ...] = (
    # 2 layers × 2 KV heads × 32 dims; float32 checkpoint runs as bfloat16 under --dtype auto
    Case("base, auto→bf16, 64 MiB", None, ("--kv-cache-memory-bytes", str(64 * MiB))),
    # float32 KV, a context that is not a whole number of 128-token blocks
    Case(
        "base, float32, 48 MiB, len 2000",
        None,
        ("--dtype", "float32", "--kv-cache-memory-bytes", str(48 * MiB), "--max-model-len", "2000"),
    ),
    # more layers and KV heads, a bfloat16 checkpoint
    Case(
        "4 layers × 4 KV heads, bf16, 40 MiB",
        "acc-l4-kv4:layers=4,kv_heads=4,dtype=bfloat16",
        ("--kv-cache-memory-bytes", str(40 * MiB)),
    ),
    # one KV head of 64 dims over 3 layers, float32, block size 64, a pool that is not whole blocks
    Case(
        "3 layers × 1 KV head × 64, fp32, 100 MiB, block 64",
        "acc-l3-kv1-hd64:layers=3,kv_heads=1,head_dim=64",
        ("--dtype", "float32", "--kv-cache-memory-bytes", str(100 * MiB), "--block-size", "64"),
    ),
)


@dataclass(frozen=True)
class Result:
    case: Case
    argv: tuple[str, ...]
    predicted_tokens: int
    predicted_concurrency: float
    predicted_blocks: int
    kv_bytes_per_token: int
    report: StartReport
    log_text: str
    metrics_text: str

    @property
    def error(self) -> float | None:
        reported = self.report.kv_cache_tokens
        if not reported:
            return None
        return (self.predicted_tokens - reported) / reported


def build_models(out: Path, cases: tuple[Case, ...] = CASES) -> dict[str, Path]:
    """The case models: the test bed's base model, and variants built into ``out`` (seeded)."""
    variants = [c.variant for c in cases if c.variant]
    paths = {"tiny-llama": tiny_model()}
    if variants:
        python = REPO / ".venv-vllm" / "bin" / "python"
        argv = [str(python), str(REPO / "scripts" / "build_tiny_model.py"), "--out", str(out)]
        for v in variants:
            argv += ["--variant", v]
        subprocess.run(argv, check=True, capture_output=True, timeout=600)
        for v in variants:
            name = v.split(":", 1)[0]
            paths[name] = out / "models" / name
    return paths


def predict(model: Path, argv: list[str]) -> tuple[int, float, int, int]:
    """(tokens, concurrency, blocks, KV bytes per token) the estimator predicts for this argv."""
    est = estimate_memory(load_model_dims(str(model)), EngineConfig.from_argv(argv), host_device())
    return est.kv.tokens, est.kv.max_concurrency, est.kv.num_blocks, est.kv_bytes_per_token


def run_cases(workdir: Path, cases: tuple[Case, ...] = CASES) -> list[Result]:
    """Start each case's real vLLM in turn (stopping it before the next) and collect both sides."""
    models = build_models(workdir / "variants", cases)
    results = []
    for i, case in enumerate(cases):
        model = models[case.model_name]
        argv = serve_argv(model, f"acc{i}", 0, *case.flags, lora=False)
        tokens, conc, blocks, per_token = predict(model, argv)
        with running_vllm(
            workdir / f"case{i}", *case.flags, model=model, served_name=f"acc{i}", lora=False
        ) as srv:
            metrics = httpx.get(srv.base_url + "/metrics", timeout=10).text
            log_text = srv.log()
        report = parse_start_report(log_text, cache_config_labels(metrics))
        results.append(Result(case, tuple(argv), tokens, conc, blocks, per_token, report, log_text, metrics))
    return results


def table(results: list[Result]) -> str:
    """The accuracy table, as the test prints it and bench/README.md quotes it."""
    cols = ("B/token", 8), ("predicted", 10), ("reported", 10), ("error", 7), ("blocks p/r", 11)
    head = f"{'configuration':<50} " + " ".join(f"{name:>{width}}" for name, width in cols)
    lines = [head, "-" * len(head)]
    for r in results:
        err = "n/a" if r.error is None else f"{r.error * 100:+.2f}%"
        rep = r.report.kv_cache_tokens
        rep_text = "n/a" if rep is None else f"{rep:,}"
        blocks = f"{r.predicted_blocks}/{r.report.num_blocks}"
        lines.append(
            f"{r.case.name:<50} {r.kv_bytes_per_token:>8,} {r.predicted_tokens:>10,} "
            f"{rep_text:>10} {err:>7} {blocks:>11}"
        )
    return "\n".join(lines)
