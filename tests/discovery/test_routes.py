"""The discovery control API in-process (ASGITransport over create_app), through the same typed
client the CLI and the MCP server use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.discovery.world import World
from vllm_mcp.api.discovery import AssessRequest, EndpointQuery, ModelQuery, RefreshRequest
from vllm_mcp.client.daemon_client import DaemonClient
from vllm_mcp.client.discovery_api import DiscoveryApi
from vllm_mcp.config import Settings
from vllm_mcp.core.gpu_catalog import Device, GiB
from vllm_mcp.daemon.app import create_app
from vllm_mcp.daemon.services import Services
from vllm_mcp.discovery.service import Discovery
from vllm_mcp.errors import InvalidRequest, NotFound

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
H100 = Device(
    index=0, name="H100-80GB", memory_total_bytes=80 * GiB, memory_free_bytes=79 * GiB, source="nvml"
)


def settings_for(world: World, state: Path) -> Settings:
    return Settings.model_validate(
        {
            "paths": {"state_dir": str(state)},
            "engine": {"vllm_bin": str(state / "no-vllm-here")},
            "discovery": {
                "hf_cache_dir": str(world.hf),
                "extra_roots": [str(world.local)],
                "hub_enrichment": False,
                "probe_targets": [],
                "probe_engine_range": False,
            },
        }
    )


@pytest.fixture
async def api(world: World, state_dir: Path) -> AsyncIterator[DiscoveryApi]:
    settings = settings_for(world, state_dir)
    services = Services.build(settings)
    services.__dict__["discovery"] = Discovery(settings, services.db, env={}, devices=lambda: ((H100,), None))
    transport = httpx.ASGITransport(app=create_app(services))
    async with DaemonClient(settings, transport=transport, autostart=False) as client:
        yield DiscoveryApi(client)
    services.db.close()


@pytest.mark.anyio
async def test_listing_filters_and_pages(api: DiscoveryApi, world: World) -> None:
    everything = await api.models(ModelQuery(limit=200))
    assert everything.total == len(everything.models) >= 12 and everything.next_offset is None
    assert {r.kind for r in everything.roots} == {"hf-cache", "local"}
    first = await api.models(ModelQuery(limit=3))
    second = await api.models(ModelQuery(limit=3, offset=first.next_offset or 0))
    assert first.total == everything.total and first.next_offset == 3
    assert [m.id for m in first.models + second.models] == [m.id for m in everything.models[:6]]
    awq = await api.models(ModelQuery(quantization="awq"))
    assert [m.id for m in awq.models] == ["Qwen/Qwen2.5-7B-Instruct-AWQ"]
    gguf = await api.models(ModelQuery(quantization="Q4_K_M"))
    assert [m.kind for m in gguf.models] == ["gguf"]
    mla = await api.models(ModelQuery(architecture="deepseek"))
    assert [m.id for m in mla.models] == ["deepseek-ai/DeepSeek-V2-Lite-Chat"]
    small = await api.models(ModelQuery(max_weight_bytes=10 * 10**9, kind="model", status="ok"))
    assert small.models and all(
        m.meta and m.meta.weight_bytes and m.meta.weight_bytes <= 10**10 for m in small.models
    )
    assert LLAMA not in {m.id for m in small.models}
    named = await api.models(ModelQuery(name="llama-3.1"))
    assert {m.id for m in named.models} >= {LLAMA, "acme/llama-3.1-8b-sql-lora"}
    lora = next(m for m in named.models if m.kind == "lora")
    assert lora.lora is not None and lora.lora.base_id == LLAMA  # its base was found on disk too
    broken = await api.models(ModelQuery(status="broken"))
    assert {m.name for m in broken.models} == {"dangling-model", "bad-json-model"}


@pytest.mark.anyio
async def test_model_detail_and_unknown_ids(api: DiscoveryApi) -> None:
    detail = await api.model(LLAMA)
    assert detail.model.id == LLAMA and detail.hub_status == "disabled"
    with pytest.raises(NotFound) as err:
        await api.model("meta-llama/Llama-9")
    assert "Did you mean" not in err.value.hint and "discover-models" in err.value.hint
    with pytest.raises(NotFound) as err:
        await api.model("Llama-3.1")
    assert LLAMA in err.value.hint


@pytest.mark.anyio
async def test_bad_filters_are_invalid_requests(api: DiscoveryApi) -> None:
    with pytest.raises(InvalidRequest, match="kind"):
        await api._d.request("GET", "/v1/discovery/models", params={"kind": "banana"})
    with pytest.raises(InvalidRequest, match="limit"):
        await api._d.request("GET", "/v1/discovery/models", params={"limit": "0"})
    with pytest.raises(InvalidRequest):
        await api._d.request("GET", "/v1/discovery/models", params={"colour": "red"})


@pytest.mark.anyio
async def test_assess_through_the_api(api: DiscoveryApi) -> None:
    result = await api.assess(AssessRequest(model=LLAMA))
    assert result.registry.supported is True and result.registry.bundled  # no vLLM at engine.vllm_bin
    assert result.tool_call_parser == "llama3_json"
    assert result.suggested_flags == ["--enable-auto-tool-choice", "--tool-call-parser", "llama3_json"]
    assert [f.gpu for f in result.fits] == ["GPU 0: H100-80GB"] and result.fits[0].fits
    declared = await api.assess(AssessRequest(model=LLAMA, gpus="1xRTX4090"))
    assert declared.fits[0].gpu.endswith("[declared]")
    with pytest.raises(InvalidRequest, match="unknown GPU"):
        await api.assess(AssessRequest(model=LLAMA, gpus="1xBananaGPU"))


@pytest.mark.anyio
async def test_refresh_and_summary(api: DiscoveryApi) -> None:
    first = await api.refresh(RefreshRequest(hub=False))
    again = await api.refresh(RefreshRequest(hub=False))
    assert again.read == 0 and again.reused == first.read + first.reused and again.models == first.models
    assert (first.broken, first.incomplete) == (2, 1) and first.hub == "disabled"
    full = await api.refresh(RefreshRequest(full=True, hub=False))
    assert full.read == first.read + first.reused
    summary = await api.summary()
    assert summary.by_status == {"ok": first.models - 3, "broken": 2, "incomplete": 1}
    assert summary.by_kind["gguf"] == 1 and summary.endpoints is None
    scan = await api.endpoints(EndpointQuery())
    assert scan.probed == 0 and (await api.summary()).endpoints is not None


@pytest.mark.anyio
async def test_model_manager_list_models_shape(api: DiscoveryApi) -> None:
    """list-models of the model manager reads `models`, and each item's `id`/`name`/`path`."""
    raw = await api._d.request("GET", "/v1/discovery/models", params={"limit": 50})
    assert isinstance(raw["models"], list) and {"id", "name", "path"} <= set(raw["models"][0])
