"""End-to-end fixtures: a real daemon process and real MCP clients over stdio."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_types import CallToolResult, TextContent

from mcp import Client, StdioServerParameters
from tests.helpers import cli_env, run_cli
from tests.testbed import testbed_dir, vllm_bin

KV_BYTES = 64 * 1024 * 1024


def daemon_env(state_dir: Path, **extra: str) -> dict[str, str]:
    defaults = {
        "VLLM_MCP__ENGINE__VLLM_BIN": str(vllm_bin()),
        "VLLM_MCP__MODELS__ALLOWED_ROOTS": json.dumps([str(testbed_dir())]),
    }
    return cli_env(state_dir, **(defaults | extra))


@contextlib.contextmanager
def daemon(env: dict[str, str]) -> Iterator[dict[str, str]]:
    started = run_cli(["daemon", "start"], env)
    assert started.returncode == 0, started.stderr
    try:
        yield env
    finally:
        run_cli(["daemon", "stop", "--timeout", "90"], env, timeout=120)


@contextlib.asynccontextmanager
async def mcp_client(
    env: dict[str, str], server: str = "model-manager", mode: str = "auto"
) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "vllm_mcp", "mcp", server], env=env)
    async with Client(params, mode=mode) as client:  # type: ignore[arg-type]
        yield client


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def call_ok(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
