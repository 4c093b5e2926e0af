"""The model manager end to end on the real vLLM test bed: MCP over stdio → daemon → vllm serve.

One daemon and one tiny-model engine are shared by the tests of this module, in file order:
load (two clients at once, both protocol eras) → serve → sleep/wake → LoRA → killing the MCP
server changes nothing → SIGKILL the daemon, adopt → unload leaves no process of the group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil
import pytest

from tests.e2e.conftest import KV_BYTES, call_ok, daemon, daemon_env, mcp_client, text_of
from tests.helpers import group_alive, run_cli, wait_for
from tests.testbed import require_testbed, tiny_lora, tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.anyio]

LOAD_ARGS: dict[str, Any] = {
    "model": str(tiny_model()),
    "served_name": "tiny",
    "kv_cache_memory_bytes": KV_BYTES,
    "max_model_len": 2048,
    "enforce_eager": True,
    "enable_lora": True,
    "max_loras": 2,
    "max_lora_rank": 8,
    "wait": False,
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    require_testbed()
    with daemon(daemon_env(tmp_path_factory.mktemp("e2e") / "state")) as env:
        yield env


def complete(base_url: str, model: str, prompt: str = "hello world") -> str:
    resp = httpx.post(
        f"{base_url}/v1/completions",
        timeout=60,
        json={"model": model, "prompt": prompt, "max_tokens": 6, "temperature": 0},
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["choices"][0]["text"])


async def test_two_clients_load_at_once_in_both_eras_and_get_one_ready_instance(
    env: dict[str, str],
) -> None:
    views: list[dict[str, Any]] = []

    async def load(mode: str) -> None:
        async with mcp_client(env, mode=mode) as client:
            views.append(await call_ok(client, "load-model", **LOAD_ARGS))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            tg.start_soon(load, "legacy")  # 2025-11-25 handshake era
            tg.start_soon(load, "2026-07-28")  # stateless era
    assert {v["name"] for v in views} == {"tiny"}
    assert len({v["pid"] for v in views}) == 1
    async with mcp_client(env) as client:
        listed = await call_ok(client, "list-models")
        assert [i["name"] for i in listed["instances"]] == ["tiny"]
        with anyio.fail_after(300):
            view = views[0]
            while view["state"] != "ready":
                view = await call_ok(client, "wait-for-model", name="tiny", timeout_s=30)
                assert view["state"] in ("starting", "ready"), view
    assert complete(view["base_url"], "tiny")


async def test_sleep_then_wake_keeps_serving(env: dict[str, str]) -> None:
    async with mcp_client(env) as client:
        view = await call_ok(client, "sleep-model", name="tiny", level=1)
        assert view["state"] == "sleeping"
        base = view["base_url"]
        assert httpx.get(f"{base}/is_sleeping").json()["is_sleeping"] is True
        view = await call_ok(client, "wake-model", name="tiny")
        assert view["state"] == "ready"
        assert httpx.get(f"{base}/is_sleeping").json()["is_sleeping"] is False
    assert complete(base, "tiny")


async def test_lora_loads_serves_and_unloads(env: dict[str, str]) -> None:
    async with mcp_client(env) as client:
        view = await call_ok(
            client, "load-lora", name="tiny", lora_name="tiny-lora", lora_path=str(tiny_lora())
        )
        assert view["loras"] == ["tiny-lora"]
        base = view["base_url"]
        assert complete(base, "tiny-lora", "the model") != complete(base, "tiny", "the model")
        view = await call_ok(client, "unload-lora", name="tiny", lora_name="tiny-lora")
        assert view["loras"] == []
    models = httpx.get(f"{base}/v1/models").json()["data"]
    assert [m["id"] for m in models] == ["tiny"]


async def test_bad_inputs_are_clear_tool_errors_and_start_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad_cases = [
        ({**LOAD_ARGS, "served_name": "x1", "tensor_parallel_size": 0}, "tensor_parallel_size"),
        (
            {**LOAD_ARGS, "served_name": "x2", "kv_cache_memory_bytes": None, "gpu_memory_utilization": 1.5},
            "gpu_memory_utilization",
        ),
        ({**LOAD_ARGS, "served_name": "x3", "extra_flags": ["--worker-cls", "evil"]}, "--worker-cls"),
        ({**LOAD_ARGS, "served_name": "x4", "model": str(tmp_path)}, "allowed"),
        ({**LOAD_ARGS, "served_name": "x5", "model": "not a model id!"}, "model"),
    ]
    async with mcp_client(env) as client:
        for case, needle in bad_cases:
            args = {k: v for k, v in case.items() if v is not None}
            result = await client.call_tool("load-model", args)
            assert result.is_error, args
            text = text_of(result)
            assert needle in text, text
            assert "Traceback" not in text
        listed = await call_ok(client, "list-models")
    assert [i["name"] for i in listed["instances"]] == ["tiny"]


async def test_port_in_use_is_refused_before_anything_starts(env: dict[str, str]) -> None:
    async with mcp_client(env) as client:
        view = await call_ok(client, "get-model-status", name="tiny")
        result = await client.call_tool(
            "load-model", {**LOAD_ARGS, "served_name": "other", "port": view["port"]}
        )
        assert result.is_error
        assert "port" in text_of(result).lower()
        listed = await call_ok(client, "list-models")
    assert [i["name"] for i in listed["instances"]] == ["tiny"]


async def test_killing_the_mcp_server_group_leaves_daemon_and_engine_alone(env: dict[str, str]) -> None:
    # What Crush does after a failed ping: SIGKILL the stdio server's whole process group.
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm_mcp", "mcp", "model-manager"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    await anyio.sleep(1.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    async with mcp_client(env) as client:
        view = await call_ok(client, "get-model-status", name="tiny")
    assert view["state"] == "ready"
    assert complete(view["base_url"], "tiny")


async def test_daemon_sigkill_then_restart_adopts_the_engine_and_unload_is_clean(
    env: dict[str, str],
) -> None:
    state_dir = Path(env["VLLM_MCP__PATHS__STATE_DIR"])
    async with mcp_client(env) as client:
        before = await call_ok(client, "get-model-status", name="tiny")
    daemon_pid = int((state_dir / "daemon.pid").read_text())
    os.kill(daemon_pid, signal.SIGKILL)
    assert wait_for(lambda: not psutil.pid_exists(daemon_pid), 10)
    assert psutil.pid_exists(before["pid"]), "the engine must outlive its daemon"
    assert run_cli(["daemon", "start"], env).returncode == 0
    async with mcp_client(env) as client:
        after = await call_ok(client, "get-model-status", name="tiny")
        assert after["state"] == "ready"
        assert after["pid"] == before["pid"], "adopted, not restarted"
        assert complete(after["base_url"], "tiny")
        gone = await call_ok(client, "unload-model", name="tiny")
        assert gone["state"] == "stopped"
    assert wait_for(lambda: not group_alive(before["pid"]), 30), group_alive(before["pid"])
