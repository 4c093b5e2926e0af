from __future__ import annotations

from pathlib import Path

from tests.helpers import cli_env, run_cli
from vllm_mcp.cli.docs import render


def test_cli_reference_is_current() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    assert doc.read_text() == render(), "run `make docs`"


def test_help_and_config_show_work_without_a_daemon(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "state")
    assert run_cli(["--help"], env).returncode == 0
    shown = run_cli(["config", "show", "--json"], env)
    assert shown.returncode == 0
    assert '"key": "engine.vllm_bin"' in shown.stdout


def test_bad_config_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "state", VLLM_TENSOR_PARALLEL_SIZE="0")
    result = run_cli(["config", "show"], env)
    assert result.returncode == 2
    assert "engine_defaults.tensor_parallel_size" in result.stderr
    assert "VLLM_TENSOR_PARALLEL_SIZE" in result.stderr
    assert "Traceback" not in result.stderr
