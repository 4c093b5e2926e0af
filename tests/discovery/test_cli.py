"""`vllm-mcp discover` as a real subprocess against a real (auto-started) daemon, and where the
scan roots come from (HF_HOME, HF_HUB_CACHE, VLLM_MODEL_CACHE_DIR, settings)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.discovery.world import World
from tests.helpers import cli_env, run_cli
from vllm_mcp.config import Settings, load_settings
from vllm_mcp.discovery.service import scan_roots


@pytest.fixture(scope="module")
def env(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("discover-cli") / "state"
    state.mkdir()
    env = cli_env(
        state,
        HF_HUB_CACHE=str(world.hf),
        HF_HUB_OFFLINE="1",
        COLUMNS="300",  # rich folds long ids at the default 80 columns of a pipe
        VLLM_MCP__DISCOVERY__EXTRA_ROOTS=json.dumps([str(world.local)]),
        VLLM_MCP__DISCOVERY__PROBE_TARGETS="[]",
        VLLM_MCP__DISCOVERY__PROBE_ENGINE_RANGE="false",
        VLLM_MCP__ENGINE__VLLM_BIN=str(state / "no-vllm"),
    )
    yield env
    run_cli(["daemon", "stop"], env)  # never leave a daemon behind


@pytest.mark.timeout(120)
def test_discover_prints_a_table_and_json(env: dict[str, str]) -> None:
    table = run_cli(["discover"], env)  # auto-starts the daemon
    assert table.returncode == 0, table.stderr
    assert "meta-llama/Llama-3.1-8B-Instruct" in table.stdout and "LlamaForCausalLM" in table.stdout
    assert "broken: dangling symlink config.json" in table.stdout
    as_json = json.loads(run_cli(["discover", "--json", "--quant", "awq"], env).stdout)
    assert [m["id"] for m in as_json["page"]["models"]] == ["Qwen/Qwen2.5-7B-Instruct-AWQ"]
    refreshed = run_cli(["discover", "--refresh", "--json", "--limit", "1"], env)
    data = json.loads(refreshed.stdout)
    assert data["refresh"]["hub"].startswith("offline, showing local metadata")
    assert data["page"]["next_offset"] == 1


@pytest.mark.timeout(120)
def test_discover_one_model_with_its_assessment(env: dict[str, str]) -> None:
    shown = run_cli(["discover", "--model", "Qwen/Qwen3-8B-FP8", "--gpus", "1xL4"], env)
    assert shown.returncode == 0, shown.stderr
    assert "vLLM support: supported" in shown.stdout and "bundled list, vLLM not installed" in shown.stdout
    assert "--reasoning-parser qwen3" in shown.stdout and "L4" in shown.stdout
    missing = run_cli(["discover", "--model", "no/such-model"], env)
    assert missing.returncode == 2 and "error:" in missing.stderr and "hint:" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_scan_roots_follow_the_hf_environment(tmp_path: Path) -> None:
    s = Settings()
    assert scan_roots(s, {"HOME": "/home/u"})[0].path == Path("/home/u/.cache/huggingface/hub")
    assert scan_roots(s, {"HF_HOME": "/data/hf"})[0].path == Path("/data/hf/hub")
    assert scan_roots(s, {"HF_HOME": "/data/hf", "HF_HUB_CACHE": "/fast/hub"})[0].path == Path("/fast/hub")
    loaded = load_settings(
        env={
            "VLLM_MODEL_CACHE_DIR": str(tmp_path / "models"),
            "VLLM_MCP__DISCOVERY__EXTRA_ROOTS": json.dumps([str(tmp_path / "x")]),
        },
        config_path=None,
    ).settings
    roots = scan_roots(loaded, {"HF_HUB_CACHE": str(tmp_path / "models")})
    assert [(r.path, r.kind) for r in roots] == [(tmp_path / "models", "hf-cache"), (tmp_path / "x", "local")]
    over = Settings.model_validate({"discovery": {"hf_cache_dir": "/override"}})
    assert scan_roots(over, {"HF_HUB_CACHE": "/fast/hub"})[0].path == Path("/override")
