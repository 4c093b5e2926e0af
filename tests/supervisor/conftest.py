"""Supervisor fixtures: settings on a tmp state dir, the fake vLLM as engine.vllm_bin, and a
supervisor over a real SQLite file that is always stopped (whole process groups) afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fake_vllm.launch import FAKE_VLLM_BIN
from tests.testbed import free_port
from vllm_mcp.config.settings import EngineSettings, ModelsSettings, PathsSettings, Settings
from vllm_mcp.store import Database
from vllm_mcp.store.instances import InstanceStore
from vllm_mcp.supervisor.supervisor import Supervisor

SettingsFactory = Callable[..., Settings]


def fake_model(root: Path, name: str = "fake-model") -> Path:
    """A local model folder the fake vLLM can 'serve' (config.json is all the checks need)."""
    folder = root / "models" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    return folder


def make_settings(root: Path, *, vllm_bin: Path | str = FAKE_VLLM_BIN, **engine: Any) -> Settings:
    start = free_port()
    defaults: dict[str, Any] = {
        "vllm_bin": str(vllm_bin),
        "port_range_start": start,
        "port_range_end": min(start + 40, 65535),
        "start_timeout_s": 30.0,
        "stop_timeout_s": 5.0,
        "platform": "cpu",
    }
    defaults.update(engine)
    return Settings(
        paths=PathsSettings(state_dir=root / "state"),
        engine=EngineSettings(**defaults),
        models=ModelsSettings(allowed_roots=[root / "models"]),
    )


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return fake_model(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def supervisor(settings: Settings) -> AsyncIterator[Supervisor]:
    """A started supervisor over ``settings``; every instance it owns is stopped afterwards."""
    async with running_supervisor(settings) as sup:
        yield sup


@contextlib.asynccontextmanager
async def running_supervisor(settings: Settings, **kw: Any) -> AsyncIterator[Supervisor]:
    db = Database(settings.db_path)
    sup = Supervisor(settings, InstanceStore(db), **kw)
    await sup.start()
    try:
        yield sup
    finally:
        await sup.stop()
        db.close()
