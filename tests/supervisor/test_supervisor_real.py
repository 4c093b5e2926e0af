"""The supervisor on the real vLLM test bed (tiny model, CPU). Two engine starts in this module:
one shared instance (loaded by two concurrent calls) for serving, sleep/wake and LoRA — each
test leaves it ready as it found it — and one for adoption and a clean unload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests import testbed
from tests.helpers import group_alive
from tests.supervisor.conftest import make_settings, running_supervisor
from tests.testbed import KV_BYTES, require_testbed, tiny_lora, tiny_model, vllm_bin
from vllm_mcp.api.instances import InstanceView
from vllm_mcp.config import Settings
from vllm_mcp.config.settings import ModelsSettings
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import State
from vllm_mcp.engine.client import VllmClient
from vllm_mcp.errors import UpstreamHTTPError
from vllm_mcp.store import Database
from vllm_mcp.store.instances import InstanceStore
from vllm_mcp.supervisor.engine_ops import sleep_gauge
from vllm_mcp.supervisor.supervisor import Supervisor

pytestmark = [pytest.mark.vllm, pytest.mark.anyio, pytest.mark.timeout(600)]

START_TIMEOUT_S = 400.0  # ~35 s alone; the machine is shared with other engineers' engines


def _settings(root: Path) -> Settings:
    settings = make_settings(
        root, vllm_bin=vllm_bin(), start_timeout_s=START_TIMEOUT_S, stop_timeout_s=20.0, hf_hub_offline=True
    )
    return settings.model_copy(update={"models": ModelsSettings(allowed_roots=[testbed.testbed_dir()])})


def _spec(name: str) -> EngineSpec:
    return EngineSpec(
        str(tiny_model()),
        served_name=name,
        kv_cache_memory_bytes=KV_BYTES,
        max_model_len=2048,
        enforce_eager=True,
        enable_lora=True,
        max_loras=2,
        max_lora_rank=8,
    )


@dataclass
class Shared:
    sup: Supervisor
    loads: list[InstanceView]
    ready: InstanceView


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    require_testbed()
    settings = _settings(tmp_path_factory.mktemp("sup-real"))
    async with running_supervisor(settings) as sup:
        loads = await asyncio.gather(sup.load(_spec("tiny-sup")), sup.load(_spec("tiny-sup")))
        ready = await sup.wait_ready("tiny-sup", START_TIMEOUT_S)
        yield Shared(sup, list(loads), ready)


async def _complete(base_url: str, model: str) -> str:
    async with VllmClient(base_url, timeout=60) as client:
        body = await client.completion(model, "hello world", max_tokens=6, temperature=0)
    return str(body["choices"][0]["text"])


def _api_servers_serving(name: str) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if "serve" in cmd and "--served-model-name" in cmd and name in cmd:
            pids.append(proc.info["pid"])
    return pids


async def test_two_concurrent_loads_started_one_engine(shared: Shared) -> None:
    assert shared.ready.state is State.READY
    assert {v.pid for v in shared.loads} == {shared.ready.pid}
    assert [v.name for v in await shared.sup.list()] == ["tiny-sup"]
    assert _api_servers_serving("tiny-sup") == [shared.ready.pid]
    assert shared.ready.pid is not None
    assert len(group_alive(shared.ready.pid)) >= 3  # API server, EngineCore, Worker


async def test_completion_through_its_port(shared: Shared) -> None:
    assert shared.ready.base_url is not None
    assert await _complete(shared.ready.base_url, "tiny-sup")


@pytest.mark.parametrize("level", [1, 2])
async def test_sleep_is_verified_and_wake_serves_the_same_tokens(shared: Shared, level: int) -> None:
    url = shared.ready.base_url
    assert url is not None
    before = await _complete(url, "tiny-sup")
    asleep = await shared.sup.sleep("tiny-sup", level)
    assert (asleep.state, asleep.sleep_level) == (State.SLEEPING, level)
    async with VllmClient(url) as client:
        assert await client.is_sleeping()
        assert sleep_gauge(await client.metrics_text()) == (
            "weights_offloaded" if level == 1 else "discard_all"
        )
        awake = await shared.sup.wake("tiny-sup")
        assert awake.state is State.READY
        assert not await client.is_sleeping()
    assert await _complete(url, "tiny-sup") == before  # level 2: the weights really came back


async def test_lora_adapter_serves_then_unloads(shared: Shared) -> None:
    url = shared.ready.base_url
    assert url is not None
    base = await _complete(url, "tiny-sup")
    view = await shared.sup.load_lora("tiny-sup", "tiny-lora", str(tiny_lora()))
    assert view.loras == ["tiny-lora"]
    assert await _complete(url, "tiny-lora") != base
    assert (await shared.sup.unload_lora("tiny-sup", "tiny-lora")).loras == []
    with pytest.raises(UpstreamHTTPError) as err:
        await _complete(url, "tiny-lora")
    assert err.value.status == 404


async def test_a_killed_daemons_engine_is_adopted_serves_and_unloads_without_a_trace(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    db = Database(settings.db_path)
    first = Supervisor(settings, InstanceStore(db))
    await first.start()
    await first.load(_spec("tiny-adopt"))
    view = await first.wait_ready("tiny-adopt", START_TIMEOUT_S)
    await first.abandon()  # the daemon dies: no stop, no write
    db.close()
    assert view.pid is not None
    assert view.base_url is not None
    members = group_alive(view.pid)
    assert len(members) >= 3
    async with running_supervisor(settings) as second:
        adopted = await second.get("tiny-adopt")
        assert (adopted.state, adopted.pid, adopted.port) == (State.READY, view.pid, view.port)
        assert await _complete(view.base_url, "tiny-adopt")
        began = time.monotonic()
        stopped = await second.unload("tiny-adopt")
        took = time.monotonic() - began
        assert stopped.state is State.STOPPED
        assert group_alive(view.pid) == []
        assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in members)
        assert took < 20.0  # SIGTERM was enough (FACTS.md: 0.3-1.9 s)
