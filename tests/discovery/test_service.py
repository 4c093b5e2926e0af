"""The Discovery service's index in SQLite: it outlives the daemon, and a new daemon's first
scan of unchanged folders reads nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.discovery.world import World
from vllm_mcp.api.discovery import ModelQuery
from vllm_mcp.config import Settings
from vllm_mcp.discovery.service import Discovery
from vllm_mcp.store import Database


def _settings(world: World) -> Settings:
    return Settings.model_validate(
        {
            "discovery": {
                "hf_cache_dir": str(world.hf),
                "extra_roots": [str(world.local)],
                "rescan_interval_s": 3600,
            }
        }
    )


@pytest.mark.anyio
async def test_a_restarted_daemon_reuses_the_sqlite_index(
    world: World, tmp_path: Path, opened_files: list[str]
) -> None:
    first = Discovery(_settings(world), Database(tmp_path / "state.db"), env={})
    cold = await first.rescan()
    assert len(cold.changed) == len(cold.rows) > 10
    second = Discovery(_settings(world), Database(tmp_path / "state.db"), env={})
    opened_files.clear()
    warm = await second.rescan()
    assert warm.changed == [] and warm.reused == len(cold.rows)
    assert [p for p in opened_files if p.startswith((str(world.hf), str(world.local)))] == []
    page = await second.list_models(ModelQuery(limit=200))
    assert page.total == len(cold.entries())


@pytest.mark.anyio
async def test_a_listing_within_the_interval_does_not_rescan(world: World, tmp_path: Path) -> None:
    disc = Discovery(_settings(world), Database(tmp_path / "s.db"), env={})
    first = await disc.list_models(ModelQuery())
    again = await disc.list_models(ModelQuery())
    assert again.scanned_at == first.scanned_at
