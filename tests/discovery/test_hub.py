"""Hub enrichment against a local server standing in for the hub (HfApi honours the endpoint),
and offline: the call still succeeds and says it shows local metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.discovery.servers import hub_app, serving
from tests.discovery.world import World
from tests.testbed import free_port
from vllm_mcp.api.discovery import RefreshRequest
from vllm_mcp.config import Settings
from vllm_mcp.discovery.hub import OFFLINE, enrich
from vllm_mcp.discovery.service import Discovery
from vllm_mcp.store import Database

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
HUB = {
    LLAMA: {
        "downloads": 5_123_456,
        "likes": 4200,
        "pipeline_tag": "text-generation",
        "gated": "manual",
        "library_name": "transformers",
        "tags": ["llama", "license:llama3.1"],
        "cardData": {"license": "llama3.1"},
        "lastModified": "2024-09-25T14:34:44.000Z",
    },
    "Qwen/Qwen3-8B-FP8": {
        "downloads": 99,
        "pipeline_tag": "text-generation",
        "gated": False,
        "tags": ["license:apache-2.0"],
    },
}


def _discovery(world: World, tmp_path: Path, endpoint: str, **disc: object) -> Discovery:
    settings = Settings.model_validate(
        {
            "discovery": {
                "hf_cache_dir": str(world.hf),
                "extra_roots": [],
                "hub_endpoint": endpoint,
                "hub_timeout_s": 5,
                **disc,
            }
        }
    )
    return Discovery(settings, Database(tmp_path / "s.db"), env={})


@pytest.mark.anyio
async def test_refresh_enriches_cached_repos_from_the_hub(world: World, tmp_path: Path) -> None:
    hits: list[str] = []
    with serving(hub_app(HUB, hits)) as url:
        disc = _discovery(world, tmp_path, url)
        result = await disc.refresh(RefreshRequest(hub=True))
        assert result.hub.startswith("online (2 updated")
        detail = await disc.model_detail(LLAMA)
    assert detail.hub_status == "cached"
    hub = detail.model.hub
    assert hub is not None
    assert (hub.license, hub.downloads, hub.likes, hub.gated) == ("llama3.1", 5_123_456, 4200, "manual")
    assert hub.pipeline_tag == "text-generation" and hub.last_modified is not None
    assert LLAMA in hits and "broken-org/dangling-model" in hits  # asked, answered 404: skipped
    # Cached in SQLite: a new service (daemon restart) shows it without asking the hub.
    again = _discovery(world, tmp_path, "http://127.0.0.1:9")
    assert (await again.model_detail("Qwen/Qwen3-8B-FP8")).model.hub is not None


@pytest.mark.anyio
async def test_offline_hub_still_succeeds_with_local_metadata(world: World, tmp_path: Path) -> None:
    disc = _discovery(world, tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens
    result = await disc.refresh(RefreshRequest(hub=True))
    assert result.hub.startswith(OFFLINE) and result.models > 6
    detail = await disc.model_detail(LLAMA)
    assert (
        detail.hub_status.startswith(OFFLINE) and detail.model.meta is not None and detail.model.hub is None
    )


@pytest.mark.anyio
async def test_hf_hub_offline_env_is_honoured_without_a_request() -> None:
    hits: list[str] = []
    with serving(hub_app(HUB, hits)) as url:
        result = await enrich([LLAMA], endpoint=url, timeout=5, env={"HF_HUB_OFFLINE": "1"})
    assert result.offline and "HF_HUB_OFFLINE" in result.status and hits == []


@pytest.mark.anyio
async def test_enrichment_off_is_reported_as_disabled(world: World, tmp_path: Path) -> None:
    disc = _discovery(world, tmp_path, "http://127.0.0.1:9", hub_enrichment=False)
    assert (await disc.refresh(RefreshRequest(hub=True))).hub == "disabled"
    assert (await disc.model_detail(LLAMA)).hub_status == "disabled"
