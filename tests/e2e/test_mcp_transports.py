"""The MCP servers on their other surfaces: `mcp all` (one bundle), streamable HTTP, resources,
and `vllm-mcp tool` from a shell — each against a real daemon (no engine needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from mcp import Client
from tests.e2e.conftest import daemon, daemon_env, mcp_client
from tests.helpers import run_cli, wait_for
from tests.testbed import free_port
from vllm_mcp.mcp.servers import SERVERS, module

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with daemon(daemon_env(tmp_path_factory.mktemp("transports") / "state")) as env:
        yield env


async def test_the_all_bundle_serves_every_tool_once(env: dict[str, str]) -> None:
    with anyio.fail_after(60):
        async with mcp_client(env, server="all") as client:
            bundled = [t.name for t in (await client.list_tools()).tools]
    assert len(bundled) == len(set(bundled))
    for short in SERVERS:
        async with mcp_client(env, server=short) as client:
            own = {t.name for t in (await client.list_tools()).tools}
        assert own <= set(bundled), module(short).SERVER_NAME


async def test_model_resources_read_the_daemon(env: dict[str, str]) -> None:
    with anyio.fail_after(60):
        async with mcp_client(env) as client:
            listed = await client.read_resource("vllm://models")
            text = listed.contents[0].text  # type: ignore[union-attr]
            assert json.loads(text) == []
            missing = await client.call_tool("get-model-status", {"name": "nope"})
    assert missing.is_error
    assert "nope" in missing.content[0].text  # type: ignore[union-attr]


async def test_streamable_http_transport(env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm_mcp", "mcp", "model-manager", "--http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: _listening(port), 30), proc.stderr.read() if proc.poll() else ""
        with anyio.fail_after(30):
            async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                status = await client.call_tool("list-models", {})
        assert {"load-model", "switch-model", "wait-for-model"} <= names
        assert not status.is_error
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def test_tool_verb_calls_a_tool_from_the_shell(env: dict[str, str]) -> None:
    listed = run_cli(["tool", "model-manager", "list-models", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["instances"] == []
    bad = run_cli(["tool", "model-manager", "get-model-status", "--arg", "name=ghost"], env)
    assert bad.returncode == 1
    assert "ghost" in bad.stderr and "Traceback" not in bad.stderr
    malformed = run_cli(["tool", "model-manager", "get-model-status", "--arg", "noequals"], env)
    assert malformed.returncode == 2 and "KEY=VALUE" in malformed.stderr


def test_a_bad_path_is_refused_by_the_cli_load_verb(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(["load", str(tmp_path), "--served-name", "x"], env)
    assert result.returncode == 2
    assert "allowed" in result.stderr and "Traceback" not in result.stderr
