"""Accuracy against real vLLM: the predicted KV capacity is within ±3% of what vLLM logs, for
four configurations (KV bytes, float32 vs bfloat16, variants with other layer/KV-head counts,
another head size and block size). The engines start one after another in one module fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.optimizer.accuracy import CASES, TOLERANCE, Result, run_cases, table
from tests.testbed import require_testbed
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.optimizer.calibration import history, record_start_report
from vllm_mcp.optimizer.gpus import host_device
from vllm_mcp.optimizer.model_files import load_model_dims
from vllm_mcp.store import Database

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[Result]:
    require_testbed()
    return run_cases(tmp_path_factory.mktemp("optimizer-accuracy"))


def test_predicted_kv_capacity_is_within_3_percent_of_vllm(
    results: list[Result], capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n\nKV capacity: estimator vs real vLLM 0.32 (CPU backend)\n" + table(results) + "\n")
    assert len(results) == len(CASES) >= 4
    for r in results:
        assert r.report.kv_cache_tokens, f"{r.case.name}: no KV line in the log:\n{r.log_text[-2000:]}"
        assert r.error is not None and abs(r.error) <= TOLERANCE, table(results)
        assert r.report.max_concurrency == pytest.approx(r.predicted_concurrency, rel=TOLERANCE)
        assert r.report.num_blocks == r.predicted_blocks  # cache_config_info: the block count itself


def test_each_start_calibrates_with_the_measured_error(results: list[Result], tmp_path: Path) -> None:
    db = Database(tmp_path / "cal.db")
    for r in results:
        model = next(a for a in r.argv[2:3])
        entry = record_start_report(
            db, model, None, EngineConfig.from_argv(list(r.argv)), r.log_text, r.metrics_text,
            dims=load_model_dims(model), device=host_device(),
        )  # fmt: skip
        assert entry is not None and entry.vllm_version == "0.32.0"
        err = entry.errors["kv_tokens"]
        assert err is not None and abs(err) <= TOLERANCE
    assert len(history(db)) == len(results)
