"""Faults real vLLM cannot produce on demand, through MCP → daemon → the fake vLLM."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.e2e.conftest import call_ok, daemon, daemon_env, mcp_client, text_of
from tests.fake_vllm.launch import FAKE_VLLM_BIN
from tests.helpers import group_alive, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models" / "fake-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    return folder


def fake_daemon(tmp_path: Path, model_dir: Path, **fault_env: str) -> Any:
    env = daemon_env(
        tmp_path / "state",
        VLLM_MCP__ENGINE__VLLM_BIN=str(FAKE_VLLM_BIN),
        VLLM_MCP__MODELS__ALLOWED_ROOTS=json.dumps([str(model_dir.parent)]),
        VLLM_MCP__ENGINE__EXTRA_ENV=json.dumps(fault_env),
        VLLM_MCP__ENGINE__START_TIMEOUT_S="4",
        VLLM_MCP__ENGINE__STOP_TIMEOUT_S="2",
        VLLM_MCP__ENGINE__WARMUP="false",
    )
    return daemon(env)


@pytest.fixture
def crash_env(tmp_path: Path, model_dir: Path) -> Iterator[dict[str, str]]:
    with fake_daemon(tmp_path, model_dir, FAKE_VLLM_CRASH_AT_START="1", FAKE_VLLM_EXIT_CODE="3") as env:
        yield env


@pytest.fixture
def hang_env(tmp_path: Path, model_dir: Path) -> Iterator[dict[str, str]]:
    with fake_daemon(tmp_path, model_dir, FAKE_VLLM_HANG="1") as env:
        yield env


@pytest.fixture
def stubborn_env(tmp_path: Path, model_dir: Path) -> Iterator[dict[str, str]]:
    with fake_daemon(
        tmp_path, model_dir, FAKE_VLLM_IGNORE_SIGTERM="1", FAKE_VLLM_SPAWN_ENGINE_CORE="1"
    ) as env:
        yield env


async def test_crash_at_start_is_a_tool_error_with_exit_code_and_log_tail(
    crash_env: dict[str, str], model_dir: Path
) -> None:
    with anyio.fail_after(60):
        async with mcp_client(crash_env) as client:
            result = await client.call_tool("load-model", {"model": str(model_dir), "served_name": "m"})
            assert result.is_error
            text = text_of(result)
            assert "Engine core initialization failed" in text  # the fake's log line, from the tail
            assert "Log tail:" in text and "Next step:" in text
            status = await call_ok(client, "get-model-status", name="m")
    assert status["state"] == "failed"
    assert status["last_error"]["exit_code"] == 3


async def test_a_hung_start_times_out_at_the_limit_and_its_group_is_gone(
    hang_env: dict[str, str], model_dir: Path
) -> None:
    with anyio.fail_after(60):
        async with mcp_client(hang_env) as client:
            t0 = time.monotonic()
            result = await client.call_tool(
                "load-model", {"model": str(model_dir), "served_name": "m", "timeout_s": 30}
            )
            took = time.monotonic() - t0
            assert result.is_error, text_of(result)
            assert "4" in text_of(result) and "ready" in text_of(result).lower()
            status = await call_ok(client, "get-model-status", name="m")
    assert took < 20, "the configured start limit (4 s) bounds the wait, not the call's timeout"
    assert status["state"] == "failed"
    assert status["pid"] is None or not group_alive(status["pid"])


async def test_an_engine_ignoring_sigterm_is_killed_after_the_bound(
    stubborn_env: dict[str, str], model_dir: Path
) -> None:
    with anyio.fail_after(60):
        async with mcp_client(stubborn_env) as client:
            view = await call_ok(client, "load-model", model=str(model_dir), served_name="m")
            assert view["state"] == "ready"
            pid = view["pid"]
            assert len(group_alive(pid)) >= 2  # the fake's EngineCore child shares the group
            t0 = time.monotonic()
            gone = await call_ok(client, "unload-model", name="m")
            took = time.monotonic() - t0
    assert gone["state"] == "stopped"
    assert took >= 2.0, "SIGTERM was ignored, so the stop waited for the bound"
    assert wait_for(lambda: not group_alive(pid), 10)
