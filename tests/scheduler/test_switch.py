"""Switching on a real Supervisor with the fake vLLM: B up first, then A retired; the memory
gate (an injected ``admit``, standing in for the optimizer) may force A out first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.supervisor.conftest import fake_model, make_settings, running_supervisor
from vllm_mcp.api.instances import LoadRequest
from vllm_mcp.api.manager import SwitchRequest
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import State
from vllm_mcp.errors import DoesNotFit
from vllm_mcp.scheduler.switch import Switcher
from vllm_mcp.supervisor.supervisor import Supervisor

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sup(tmp_path: Path) -> AsyncIterator[Supervisor]:
    fake_model(tmp_path, "model-a")
    fake_model(tmp_path, "model-b")
    async with running_supervisor(make_settings(tmp_path, warmup=False)) as supervisor:
        yield supervisor


async def _load_ready(sup: Supervisor, root: Path, name: str) -> int:
    spec = sup.spec_from_request(LoadRequest(model=str(root / "models" / name), served_name=name))
    await sup.load(spec)
    view = await sup.wait_ready(name, 30)
    assert view.state is State.READY and view.pid is not None
    return view.pid


def _to(root: Path, name: str) -> LoadRequest:
    return LoadRequest(model=str(root / "models" / name), served_name=name)


async def test_b_comes_up_before_a_sleeps(sup: Supervisor, tmp_path: Path) -> None:
    await _load_ready(sup, tmp_path, "model-a")
    seen_a_while_b_started: list[State] = []

    async def admit(spec: EngineSpec) -> None:  # runs just before B starts: A still serves
        seen_a_while_b_started.append((await sup.get("model-a")).state)

    switcher = Switcher(sup, admit=admit)
    with anyio.fail_after(60):
        status = await switcher.switch(SwitchRequest(to=_to(tmp_path, "model-b"), timeout_s=45))
    assert status.phase == "done", status.message
    assert seen_a_while_b_started == [State.READY]
    assert (await sup.get("model-b")).state is State.READY
    assert (await sup.get("model-a")).state is State.SLEEPING
    await switcher.close()


async def test_switching_back_to_a_sleeping_model_wakes_it_without_a_new_process(
    sup: Supervisor, tmp_path: Path
) -> None:
    pid_a = await _load_ready(sup, tmp_path, "model-a")
    await _load_ready(sup, tmp_path, "model-b")
    await sup.sleep("model-a", 1)
    switcher = Switcher(sup)
    with anyio.fail_after(60):
        status = await switcher.switch(
            SwitchRequest(to=_to(tmp_path, "model-a"), from_name="model-b", then="unload", timeout_s=45)
        )
    assert status.phase == "done", status.message
    a = await sup.get("model-a")
    assert a.state is State.READY and a.pid == pid_a
    assert [v.name for v in await sup.list()] == ["model-a"]  # unloaded instances are gone


async def test_when_b_does_not_fit_beside_a_a_is_retired_first(sup: Supervisor, tmp_path: Path) -> None:
    await _load_ready(sup, tmp_path, "model-a")

    async def admit(spec: EngineSpec) -> None:  # room for one engine at a time
        if any(v.state is State.READY for v in await sup.list()):
            raise DoesNotFit("not beside model-a")

    switcher = Switcher(sup, admit=admit)
    with anyio.fail_after(60):
        status = await switcher.switch(SwitchRequest(to=_to(tmp_path, "model-b"), timeout_s=45))
    assert status.phase == "done", status.message
    assert "retired first" in status.message
    assert (await sup.get("model-a")).state is State.SLEEPING
    assert (await sup.get("model-b")).state is State.READY


async def test_if_b_still_cannot_fit_a_is_woken_again_and_the_switch_fails(
    sup: Supervisor, tmp_path: Path
) -> None:
    await _load_ready(sup, tmp_path, "model-a")

    async def admit(spec: EngineSpec) -> None:
        raise DoesNotFit("needs 4 GPUs", hint="Try --tensor-parallel-size 4.")

    switcher = Switcher(sup, admit=admit)
    with anyio.fail_after(60):
        status = await switcher.switch(SwitchRequest(to=_to(tmp_path, "model-b"), timeout_s=45))
    assert status.phase == "failed"
    assert "needs 4 GPUs" in status.message and "tensor-parallel-size 4" in status.message
    assert (await sup.get("model-a")).state is State.READY
    assert [v.name for v in await sup.list()] == ["model-a"]


async def test_then_keep_never_retires_a_for_room(sup: Supervisor, tmp_path: Path) -> None:
    await _load_ready(sup, tmp_path, "model-a")

    async def admit(spec: EngineSpec) -> None:
        raise DoesNotFit("no room")

    switcher = Switcher(sup, admit=admit)
    status = await switcher.switch(SwitchRequest(to=_to(tmp_path, "model-b"), then="keep", timeout_s=45))
    assert status.phase == "failed"
    assert (await sup.get("model-a")).state is State.READY


async def test_force_skips_the_memory_gate(sup: Supervisor, tmp_path: Path) -> None:
    async def admit(spec: EngineSpec) -> None:
        raise DoesNotFit("no room")

    switcher = Switcher(sup, admit=admit)
    request = LoadRequest(model=str(tmp_path / "models" / "model-b"), served_name="model-b", force=True)
    with anyio.fail_after(60):
        status = await switcher.switch(SwitchRequest(to=request, timeout_s=45))
    assert status.phase == "done", status.message
