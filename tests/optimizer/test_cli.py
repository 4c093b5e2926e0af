"""`vllm-mcp estimate|recommend|plan|gpus|calibration` as real subprocesses against a real daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli
from vllm_mcp.cli.cmd_optimizer import parse_plan_model
from vllm_mcp.errors import InvalidRequest


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("optimizer-cli") / "state"
    state.mkdir()
    env = cli_env(state, VLLM_MCP__OPTIMIZER__GPUS="2xH100-80GB")
    assert run_cli(["daemon", "start"], env).returncode == 0
    yield env
    run_cli(["daemon", "stop"], env)  # never leave a daemon behind


def test_estimate_prints_the_breakdown_and_exits_by_fit(env: dict[str, str]) -> None:
    ok = run_cli(["estimate", "meta-llama/Llama-3.1-8B", "--max-model-len", "8192"], env)
    assert ok.returncode == 0, ok.stderr
    assert "131,072 · 131,072" in ok.stdout and "fits" in ok.stdout
    bad = run_cli(["estimate", "meta-llama/Llama-3.1-70B", "--max-model-len", "8192"], env)
    assert bad.returncode == 1
    assert "does not fit" in bad.stdout and "→" in bad.stdout
    as_json = run_cli(
        ["estimate", "meta-llama/Llama-3.1-70B", "--tp", "2", "--max-model-len", "8192", "--json"], env
    )
    data = json.loads(as_json.stdout)
    assert data["kv_bytes_per_token"] == 163_840 and data["fits"] is True


def test_recommend_prints_flags_with_reasons(env: dict[str, str]) -> None:
    res = run_cli(["recommend", "meta-llama/Llama-3.1-70B", "--context", "16384", "--concurrency", "4"], env)
    assert res.returncode == 0, res.stderr
    assert "--tensor-parallel-size" in res.stdout and "vllm serve meta-llama/Llama-3.1-70B" in res.stdout
    none = run_cli(["recommend", "meta-llama/Llama-3.1-70B", "--gpus", "1xRTX4090"], env)
    assert none.returncode == 1 and "nothing fits" in none.stdout and "would fit" in none.stdout


def test_plan_places_or_names_the_smallest_change(env: dict[str, str]) -> None:
    ok = run_cli(["plan", "meta-llama/Llama-3.1-8B,ctx=32768,conc=4", "Qwen/Qwen3-8B,name=qwen"], env)
    assert ok.returncode == 0, ok.stderr
    assert "everything fits" in ok.stdout and "qwen" in ok.stdout
    full = run_cli(
        ["plan", "meta-llama/Llama-3.1-70B,ctx=32768,conc=8", "meta-llama/Llama-3.1-8B", "--json"], env
    )
    assert full.returncode == 1
    data = json.loads(full.stdout)
    assert data["fits"] is False and data["changes"]


def test_gpus_and_calibration_tables(env: dict[str, str]) -> None:
    gpus = run_cli(["gpus"], env)
    assert gpus.returncode == 0 and "no NVIDIA GPU" in gpus.stdout and "2xH100-80GB" in gpus.stdout
    cal = run_cli(["calibration", "--json"], env)
    assert cal.returncode == 0 and json.loads(cal.stdout)["entries"] == []


def test_errors_are_one_clear_line(env: dict[str, str]) -> None:
    res = run_cli(["estimate", "/no/such/model"], env)
    assert res.returncode == 2
    assert "error:" in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr


def test_plan_items_parse_or_say_what_is_wrong(tmp_path: Path) -> None:
    m = parse_plan_model("org/m,ctx=4096,conc=2,tp=2,name=x,kv=fp8,quant=fp8")
    assert (m.model, m.max_model_len, m.concurrency, m.tensor_parallel_size, m.name) == (
        "org/m",
        4096,
        2,
        2,
        "x",
    )
    with pytest.raises(InvalidRequest, match="bad plan item"):
        parse_plan_model("org/m,context=4096")
