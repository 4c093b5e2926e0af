"""The `vllm-resource-optimizer` MCP server in-process: real MCP client → tools → DaemonClient →
the daemon's ASGI app (no mocks of our classes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_types import TextContent

from mcp import Client
from vllm_mcp.client.daemon_client import DaemonClient
from vllm_mcp.config import Settings
from vllm_mcp.daemon.app import create_app
from vllm_mcp.daemon.services import Services
from vllm_mcp.mcp.base import Backend
from vllm_mcp.mcp.servers import create_server

TOOLS = {"estimate-memory", "recommend-config", "plan-placement", "check-fit", "list-gpus", "get-calibration"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    settings = Settings.model_validate(
        {"paths": {"state_dir": str(tmp_path)}, "optimizer": {"gpus": "2xH100-80GB"}}
    )
    services = Services.build(settings)
    daemon = DaemonClient(settings, autostart=False, transport=httpx.ASGITransport(app=create_app(services)))
    backend = Backend(settings=settings, _client=daemon)
    try:
        async with Client(create_server("resource-optimizer", backend)) as c:
            yield c
    finally:
        await backend.aclose()
        services.db.close()


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


@pytest.mark.anyio
async def test_the_server_lists_six_read_only_tools(client: Client) -> None:
    listing = await client.list_tools()
    assert {t.name for t in listing.tools} == TOOLS
    assert all(t.annotations and t.annotations.read_only_hint for t in listing.tools)


@pytest.mark.anyio
async def test_estimate_memory_reads_as_text_and_structure(client: Client) -> None:
    result = await client.call_tool(
        "estimate-memory", {"model": "meta-llama/Llama-3.1-8B", "max_model_len": 8192}
    )
    assert not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["model_kv_bytes_per_token"] == 131_072
    body = text(result)
    assert "FITS" in body and "131,072 B/token" in body


@pytest.mark.anyio
async def test_recommend_plan_fit_gpus_calibration(client: Client) -> None:
    rec = await client.call_tool(
        "recommend-config", {"model": "meta-llama/Llama-3.1-70B", "target_context": 8192, "concurrency": 4}
    )
    assert "--tensor-parallel-size 2" in text(rec) and "Command: vllm serve" in text(rec)
    plan = await client.call_tool(
        "plan-placement",
        {"models": [{"model": "meta-llama/Llama-3.1-8B", "concurrency": 2}, {"model": "Qwen/Qwen3-8B"}]},
    )
    assert "All models fit" in text(plan) and "--kv-cache-memory-bytes" in text(plan)
    fit = await client.call_tool("check-fit", {"model": "meta-llama/Llama-3.1-70B", "max_model_len": 8192})
    assert not fit.is_error
    assert fit.structured_content is not None and fit.structured_content["fits"] is False
    assert "What would fit instead" in text(fit)
    gpus = await client.call_tool("list-gpus", {})
    assert "no NVIDIA GPU" in text(gpus) and "2xH100-80GB (declared)" in text(gpus)
    cal = await client.call_tool("get-calibration", {})
    assert "No starts recorded yet" in text(cal)


@pytest.mark.anyio
async def test_errors_reach_the_agent_with_the_next_step(client: Client) -> None:
    result = await client.call_tool("estimate-memory", {"model": "/no/such/model"})
    assert result.is_error
    body = text(result)
    assert "Error (not_found)" in body and "Next step:" in body
    bad = await client.call_tool("list-gpus", {"gpus": "9xZ80"})
    assert bad.is_error and "unknown GPU" in text(bad)
