"""The vllm-auto-discovery MCP server in-process: a real MCP client, the server module, and the
daemon's control API behind ASGITransport — every tool's text and structured output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp_types import TextContent

from mcp import Client
from tests.discovery.test_routes import settings_for
from tests.discovery.world import World
from vllm_mcp.client.daemon_client import DaemonClient
from vllm_mcp.core.gpu_catalog import Device, GiB
from vllm_mcp.daemon.app import create_app
from vllm_mcp.daemon.services import Services
from vllm_mcp.discovery.service import Discovery
from vllm_mcp.mcp import auto_discovery
from vllm_mcp.mcp.base import Backend, new_server

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
RTX = Device(index=0, name="RTX4090", memory_total_bytes=24 * GiB, source="nvml")


@pytest.fixture
async def client(world: World, state_dir: Path) -> AsyncIterator[Client]:
    settings = settings_for(world, state_dir)
    services = Services.build(settings)
    services.__dict__["discovery"] = Discovery(settings, services.db, env={}, devices=lambda: ((RTX,), None))
    daemon = DaemonClient(settings, transport=httpx.ASGITransport(app=create_app(services)), autostart=False)
    backend = Backend(settings=settings, _client=daemon)
    server = new_server(auto_discovery.SERVER_NAME, auto_discovery.INSTRUCTIONS)
    auto_discovery.register(server, backend)
    async with Client(server) as c:
        yield c
    await backend.aclose()
    services.db.close()


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


@pytest.mark.anyio
async def test_tools_and_annotations(client: Client) -> None:
    listing = await client.list_tools()
    tools = {t.name: t for t in listing.tools}
    assert set(tools) == {
        "discover-models",
        "get-model-info",
        "assess-model",
        "discover-endpoints",
        "refresh-metadata",
    }
    assert tools["discover-models"].annotations.read_only_hint is True
    assert tools["refresh-metadata"].annotations.read_only_hint is False
    assert tools["refresh-metadata"].annotations.destructive_hint is False


@pytest.mark.anyio
async def test_discover_models_pages_with_a_next_step(client: Client) -> None:
    result = await client.call_tool("discover-models", {"limit": 2})
    assert not result.is_error
    text = _text(result)
    assert text.startswith("Models 1-2 of ") and "offset=2" in text
    assert result.structured_content["next_offset"] == 2
    awq = await client.call_tool("discover-models", {"quantization": "awq"})
    assert (
        "Qwen/Qwen2.5-7B-Instruct-AWQ · [model] · Qwen2ForCausalLM · 1.96B stored elements (packed)"
        in _text(awq)
    )
    small = await client.call_tool("discover-models", {"max_weight_gib": 2, "kind": "gguf"})
    assert "Q4_K_M" in _text(small) and small.structured_content["total"] == 1


@pytest.mark.anyio
async def test_model_info_assess_and_errors(client: Client) -> None:
    info = await client.call_tool("get-model-info", {"model": LLAMA})
    text = _text(info)
    assert "8.03B params" in text and "KV heads 8" in text and "hub status: disabled" in text
    assess = await client.call_tool("assess-model", {"model": LLAMA})
    text = _text(assess)
    assert "supported by vLLM (LlamaForCausalLM" in text and "bundled list, vLLM not installed" in text
    assert "--tool-call-parser llama3_json" in text and "GPU 0: RTX4090: fits, context up to" in text
    on_h100 = await client.call_tool("assess-model", {"model": LLAMA, "gpus": "1xH100-80GB"})
    assert "context up to 131,072" in _text(on_h100)
    missing = await client.call_tool("get-model-info", {"model": "nope/nothing"})
    assert missing.is_error and "Error (not_found)" in _text(missing) and "Next step:" in _text(missing)
    bad = await client.call_tool("assess-model", {"model": LLAMA, "gpus": "1xNoSuchGPU"})
    assert bad.is_error and "unknown GPU" in _text(bad)


@pytest.mark.anyio
async def test_refresh_endpoints_and_the_resource(client: Client) -> None:
    refreshed = await client.call_tool("refresh-metadata", {"hub": False})
    assert "Rescanned in" in _text(refreshed) and "2 broken, 1 incomplete" in _text(refreshed)
    scan = await client.call_tool("discover-endpoints", {"targets": ["127.0.0.1:1"], "timeout_s": 1})
    assert "127.0.0.1:1: unreachable" in _text(scan)
    resource = await client.read_resource(auto_discovery.RESOURCE_URI)
    body = resource.contents[0].text  # type: ignore[union-attr]
    assert "By status:" in body and "unreachable" in body
