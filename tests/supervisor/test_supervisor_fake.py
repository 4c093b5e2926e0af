"""The supervisor against the fake vLLM (a real subprocess per instance): lifecycle, faults,
concurrency, bad input. Each test owns its supervisor; every process group is gone afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import group_alive
from tests.supervisor.conftest import fake_model, make_settings, running_supervisor
from vllm_mcp.api.instances import InstanceEvent, InstanceView, LoadRequest, PresetIn
from vllm_mcp.config.settings import ExternalSettings
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import Event, State
from vllm_mcp.errors import (
    Conflict,
    EngineStartFailed,
    EngineStartTimeout,
    InvalidRequest,
    InvalidTransition,
    NotFound,
    PortInUse,
)
from vllm_mcp.store import Database
from vllm_mcp.store.instances import InstanceStore
from vllm_mcp.supervisor.supervisor import Supervisor

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


def _spec(model: Path, name: str = "fake", **kw: object) -> EngineSpec:
    return EngineSpec(str(model), served_name=name, **kw)  # type: ignore[arg-type]


async def _until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _rows(settings_db: Path) -> tuple[int, int]:
    db = Database(settings_db)
    try:
        instances = db.query("SELECT COUNT(*) FROM instances")[0][0]
        transitions = db.query("SELECT COUNT(*) FROM instance_transitions")[0][0]
        return instances, transitions
    finally:
        db.close()


# -- the happy path ------------------------------------------------------------------------------


async def test_load_returns_at_once_then_becomes_ready(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_START_DELAY": "1.5"})
    model = fake_model(tmp_path)
    async with running_supervisor(settings) as sup:
        with sup.events("fake") as events:
            began = time.monotonic()
            view = await sup.load(_spec(model))
            assert time.monotonic() - began < 1.0
            assert view.state is State.STARTING
            assert view.pid is not None
            assert view.base_url == f"http://127.0.0.1:{view.port}"
            assert settings.engine.port_range_start <= (view.port or 0) <= settings.engine.port_range_end
            ready = await sup.wait_ready("fake", 30)
            assert ready.state is State.READY
            assert ready.ready_at is not None
            seen: list[InstanceEvent] = []
            while (event := await events.get(0.2)) is not None:
                seen.append(event)
        assert [e.state for e in seen if e.event != "progress"] == [State.STARTING, State.READY]
        assert httpx.get(f"{ready.base_url}/health").status_code == 200
        transitions = InstanceStore(Database(settings.db_path)).transitions("fake")
        assert [t.event for t in transitions] == [Event.START, Event.BECAME_READY]


async def test_two_concurrent_loads_give_one_instance(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_START_DELAY": "0.5"})
    model = fake_model(tmp_path)
    async with running_supervisor(settings) as sup:
        views = await asyncio.gather(*(sup.load(_spec(model)) for _ in range(5)))
        assert len({v.pid for v in views}) == 1
        assert len({v.port for v in views}) == 1
        assert [v.name for v in await sup.list()] == ["fake"]
        await sup.wait_ready("fake", 30)
        again = await sup.load(_spec(model))
        assert again.pid == views[0].pid
        assert again.state is State.READY


async def test_served_name_taken_by_another_model_conflicts_unless_forced(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first, second = fake_model(tmp_path, "one"), fake_model(tmp_path, "two")
    async with running_supervisor(settings) as sup:
        old = await sup.load(_spec(first))
        with pytest.raises(Conflict, match="taken by") as err:
            await sup.load(_spec(second))
        assert "force" in err.value.hint
        new = await sup.load(_spec(second), force=True)
        assert new.model == str(second)
        assert new.pid != old.pid
        assert old.pid is not None
        assert group_alive(old.pid) == []


async def test_sleep_wake_and_lora_round_trip(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    model = fake_model(tmp_path)
    adapter = tmp_path / "models" / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    async with running_supervisor(settings) as sup:
        await sup.load(_spec(model, enable_lora=True))
        view = await sup.wait_ready("fake", 30)
        asleep = await sup.sleep("fake", 1)
        assert (asleep.state, asleep.sleep_level) == (State.SLEEPING, 1)
        assert (await sup.sleep("fake", 1)).state is State.SLEEPING  # idempotent
        with pytest.raises(Conflict, match="already asleep"):
            await sup.sleep("fake", 2)
        assert httpx.get(f"{view.base_url}/is_sleeping").json() == {"is_sleeping": True}
        awake = await sup.wake("fake")
        assert (awake.state, awake.sleep_level) == (State.READY, None)
        assert (await sup.sleep("fake", 2)).sleep_level == 2
        assert (await sup.wake("fake")).state is State.READY  # weights → reload → kv_cache → reset
        with pytest.raises(InvalidRequest, match="level"):
            await sup.sleep("fake", 3)

        loaded = await sup.load_lora("fake", "ad", str(adapter))
        assert loaded.loras == ["ad"]
        ids = [m["id"] for m in httpx.get(f"{view.base_url}/v1/models").json()["data"]]
        assert "ad" in ids
        assert (await sup.load_lora("fake", "ad", str(adapter))).loras == ["ad"]  # same: no-op
        with pytest.raises(NotFound, match="no adapter other") as nf:
            await sup.unload_lora("fake", "other")
        assert nf.value.hint == "loaded adapters: ad"
        assert (await sup.unload_lora("fake", "ad")).loras == []
        with pytest.raises(InvalidRequest, match="outside"):
            await sup.load_lora("fake", "x", str(tmp_path))


async def test_commands_off_the_transition_table_are_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_START_DELAY": "10"})
    adapter = fake_model(tmp_path, "adapter")
    (adapter / "adapter_config.json").write_text("{}")
    async with running_supervisor(settings) as sup:
        await sup.load(_spec(fake_model(tmp_path), enable_lora=True))
        with pytest.raises(InvalidTransition, match="cannot sleep an instance that is starting"):
            await sup.sleep("fake", 1)
        with pytest.raises(InvalidTransition, match="cannot wake"):
            await sup.wake("fake")
        with pytest.raises(Conflict, match="only while it is ready"):
            await sup.load_lora("fake", "x", str(adapter))


async def test_lora_needs_an_instance_started_with_lora(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    adapter = tmp_path / "models" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    async with running_supervisor(settings) as sup:
        await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
        with pytest.raises(InvalidRequest, match="without LoRA support") as err:
            await sup.load_lora("fake", "ad", str(adapter))
        assert "enable_lora" in err.value.hint


async def test_unload_while_starting_and_restart(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, extra_env={"FAKE_VLLM_START_DELAY": "3", "FAKE_VLLM_SPAWN_ENGINE_CORE": "1"}
    )
    async with running_supervisor(settings) as sup:
        view = await sup.load(_spec(fake_model(tmp_path)))
        assert view.pid is not None
        await _until(lambda: len(group_alive(view.pid)) >= 2)  # type: ignore[arg-type]
        stopped = await sup.unload("fake")
        assert stopped.state is State.STOPPED
        assert group_alive(view.pid) == []
        with pytest.raises(NotFound):
            await sup.get("fake")
    settings = make_settings(tmp_path / "b")
    async with running_supervisor(settings) as sup:
        first = await sup.load(_spec(fake_model(tmp_path / "b")))
        await sup.wait_ready("fake", 30)
        again = await sup.restart("fake")
        assert again.state is State.STARTING
        assert again.pid != first.pid
        assert again.port == first.port
        assert (await sup.wait_ready("fake", 30)).state is State.READY
        assert first.pid is not None
        assert group_alive(first.pid) == []


async def test_wait_ready_is_bounded_and_returns_the_current_view(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_START_DELAY": "10"})
    async with running_supervisor(settings) as sup:
        await sup.load(_spec(fake_model(tmp_path)))
        began = time.monotonic()
        view = await sup.wait_ready("fake", 0.5)
        assert 0.4 <= time.monotonic() - began < 2.0
        assert view.state is State.STARTING


# -- faults --------------------------------------------------------------------------------------


async def test_crash_at_start_is_failed_with_exit_code_and_log_tail(tmp_path: Path) -> None:
    env = {"FAKE_VLLM_CRASH_AT_START": "1", "FAKE_VLLM_EXIT_CODE": "3"}
    settings = make_settings(tmp_path, extra_env=env)
    async with running_supervisor(settings) as sup:
        view = await sup.load(_spec(fake_model(tmp_path)))
        with pytest.raises(EngineStartFailed) as err:
            await sup.wait_ready("fake", 30)
        assert err.value.context["exit_code"] == 3
        assert "exited with code 3" in err.value.message
        assert err.value.context["log_tail"].strip()
        failed = await sup.get("fake")
        assert failed.state is State.FAILED
        assert failed.last_error is not None
        assert failed.last_error.exit_code == 3
        assert failed.last_error.log_tail == err.value.context["log_tail"]
        assert failed.pid is None
        assert view.pid is not None
        assert group_alive(view.pid) == []
        gone = await sup.unload("fake")  # a failed instance can be cleared
        assert gone.state is State.STOPPED


async def test_hang_times_out_at_the_limit_and_the_group_is_gone(tmp_path: Path) -> None:
    env = {"FAKE_VLLM_HANG": "1", "FAKE_VLLM_SPAWN_ENGINE_CORE": "1"}
    settings = make_settings(tmp_path, extra_env=env, start_timeout_s=3.0)
    async with running_supervisor(settings) as sup:
        began = time.monotonic()
        view = await sup.load(_spec(fake_model(tmp_path)))
        with pytest.raises(EngineStartTimeout, match="within 3 s"):
            await sup.wait_ready("fake", 60)
        took = time.monotonic() - began
        assert 3.0 <= took < 3.0 + settings.engine.stop_timeout_s + 3.0
        assert view.pid is not None
        assert group_alive(view.pid) == []
        assert (await sup.get("fake")).state is State.FAILED


async def test_ignoring_sigterm_gets_sigkill_after_the_bound(tmp_path: Path) -> None:
    env = {"FAKE_VLLM_IGNORE_SIGTERM": "1"}
    settings = make_settings(tmp_path, extra_env=env, stop_timeout_s=1.5)
    async with running_supervisor(settings) as sup:
        view = await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
        began = time.monotonic()
        await sup.unload("fake")
        took = time.monotonic() - began
        assert 1.5 <= took < 6.0
        assert view.pid is not None
        assert group_alive(view.pid) == []
        last = InstanceStore(Database(settings.db_path)).transitions("fake")[-1]
        assert (last.event, last.detail) == (Event.EXITED, "SIGKILL after the stop timeout")


async def test_crash_of_a_ready_instance_is_seen_within_two_seconds(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_SPAWN_ENGINE_CORE": "1"})
    async with running_supervisor(settings) as sup:
        view = await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
        assert view.pid is not None
        assert len(group_alive(view.pid)) == 2
        with sup.events("fake") as events:
            os.kill(view.pid, signal.SIGKILL)  # the API server only: EngineCore would be orphaned
            began = time.monotonic()
            event = await events.get(2.0)
        assert event is not None
        assert (event.state, event.event) == (State.FAILED, Event.CRASHED)
        assert time.monotonic() - began < 2.0
        crashed = await sup.get("fake")
        assert crashed.last_error is not None
        assert crashed.last_error.code == "engine_crashed"
        await _until(lambda: group_alive(view.pid) == [])  # type: ignore[arg-type]


async def test_restart_on_crash_backs_off_and_comes_back(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, restart_on_crash=True, restart_backoff_s=0.3)
    async with running_supervisor(settings) as sup:
        first = await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        await _until(lambda: sup._actors["fake"].record.restarts == 1)
        back = await sup.wait_ready("fake", 30)
        assert back.state is State.READY
        assert back.pid != first.pid
        assert back.restarts == 1
        events = [t.event for t in InstanceStore(Database(settings.db_path)).transitions("fake")]
        assert events == [Event.START, Event.BECAME_READY, Event.CRASHED, Event.START, Event.BECAME_READY]


# -- bad input: refused, nothing started, nothing written ----------------------------------------


async def test_port_in_use_refuses_before_anything_starts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_supervisor(settings) as sup:
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            with pytest.raises(PortInUse, match=str(port)):
                await sup.load(_spec(fake_model(tmp_path), port=port))
        assert await sup.list() == []
        assert _rows(settings.db_path) == (0, 0)
        assert not (settings.log_dir / "instances").exists()


@pytest.mark.parametrize(
    ("spec_of", "error"),
    [
        (lambda root: EngineSpec(str(root.parent / "elsewhere"), served_name="x"), InvalidRequest),
        (lambda root: EngineSpec(str(root / "models" / "missing"), served_name="x"), NotFound),
    ],
)
async def test_bad_model_source_starts_nothing(
    tmp_path: Path, spec_of: object, error: type[Exception]
) -> None:
    settings = make_settings(tmp_path)
    async with running_supervisor(settings) as sup:
        with pytest.raises(error):
            await sup.load(spec_of(tmp_path))  # type: ignore[operator]
        assert await sup.list() == []
    assert _rows(settings.db_path) == (0, 0)


async def test_a_second_instance_never_takes_a_held_port(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_supervisor(settings) as sup:
        a = await sup.load(_spec(fake_model(tmp_path, "a"), name="a"))
        with pytest.raises(PortInUse):
            await sup.load(_spec(fake_model(tmp_path, "b"), name="b", port=a.port))
        b = await sup.load(_spec(fake_model(tmp_path, "b"), name="b"))
        assert b.port != a.port


# -- reading -------------------------------------------------------------------------------------


async def test_logs_page_and_unknown_names_list_the_known_ones(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_supervisor(settings) as sup:
        with pytest.raises(NotFound) as err:
            await sup.get("nope")
        assert "none" in err.value.hint
        await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
        with pytest.raises(NotFound) as err:
            await sup.unload("nope")
        assert "fake" in err.value.hint
        page = await sup.logs("fake", tail_lines=3)
        assert len(page.lines) == 3
        assert page.total_lines > 3
        assert page.next_offset == page.total_lines - 3
        top = await sup.logs("fake", tail_lines=2, before=2)
        assert top.lines[0].startswith("=== vllm-mcp")
        assert top.next_offset is None
        with pytest.raises(InvalidRequest):
            await sup.logs("fake", tail_lines=0)


async def test_start_hook_gets_the_view_and_the_log_of_that_start(tmp_path: Path) -> None:
    calls: list[tuple[InstanceView, str]] = []

    async def hook(view: InstanceView, text: str) -> None:
        calls.append((view, text))

    settings = make_settings(tmp_path)
    async with running_supervisor(settings, on_started=hook) as sup:
        await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
        await _until(lambda: calls)
    [(view, text)] = calls
    assert view.state is State.READY
    assert "starting fake" in text
    assert "KV cache size" in text  # the fake prints vLLM's start-report lines


# -- presets and request resolution --------------------------------------------------------------


async def test_presets_and_request_precedence(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    model = str(fake_model(tmp_path))
    async with running_supervisor(settings) as sup:
        saved = await sup.save_preset(
            PresetIn(name="small", model=model, kv_cache_memory_bytes=1 << 26, max_model_len=512)
        )
        assert saved.created_at == saved.updated_at
        spec = sup.spec_from_request(LoadRequest(preset="small", max_model_len=1024))
        assert (spec.model, spec.kv_cache_memory_bytes, spec.max_model_len) == (model, 1 << 26, 1024)
        assert spec.gpu_memory_utilization is None
        swapped = sup.spec_from_request(LoadRequest(preset="small", gpu_memory_utilization=0.5))
        assert (swapped.gpu_memory_utilization, swapped.kv_cache_memory_bytes) == (0.5, None)
        plain = sup.spec_from_request(LoadRequest(model=model))
        assert plain.gpu_memory_utilization == settings.engine_defaults.gpu_memory_utilization
        with pytest.raises(InvalidRequest, match="model"):
            sup.spec_from_request(LoadRequest())
        with pytest.raises(InvalidRequest) as err:
            await sup.save_preset(PresetIn(name="bad", model=model, tensor_parallel_size=0))
        assert err.value.context["field"] == "tensor_parallel_size"
        with pytest.raises(InvalidRequest, match="preset name"):
            await sup.save_preset(PresetIn(name="../x", model=model))
        assert [p.name for p in await sup.list_presets()] == ["small"]
        with pytest.raises(NotFound) as nf:
            await sup.get_preset("big")
        assert "small" in nf.value.hint
        view = await sup.load_request(LoadRequest(preset="small", wait=True, timeout_s=30))
        assert view.state is State.READY
        assert (await sup.delete_preset("small")).name == "small"
        assert await sup.list_presets() == []


# -- daemon stop and restart ---------------------------------------------------------------------


async def test_daemon_stop_stops_owned_instances_and_leaves_a_record(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_SPAWN_ENGINE_CORE": "1"})
    async with running_supervisor(settings) as sup:
        view = await sup.load(_spec(fake_model(tmp_path)))
        await sup.wait_ready("fake", 30)
    assert view.pid is not None
    assert group_alive(view.pid) == []
    [record] = InstanceStore(Database(settings.db_path)).load_all()
    assert record.state is State.SHUTDOWN
    async with running_supervisor(settings) as sup:  # the next daemon clears the record
        assert await sup.list() == []
    assert InstanceStore(Database(settings.db_path)).load_all() == []


async def test_a_killed_daemons_instance_is_adopted_and_unloaded_cleanly(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, extra_env={"FAKE_VLLM_SPAWN_ENGINE_CORE": "1"})
    db = Database(settings.db_path)
    first = Supervisor(settings, InstanceStore(db))
    await first.start()
    view = await first.load(_spec(fake_model(tmp_path)))
    await first.wait_ready("fake", 30)
    await first.abandon()  # what SIGKILL of the daemon leaves: the process runs on, the row stays
    db.close()
    assert view.pid is not None
    assert len(group_alive(view.pid)) == 2
    async with running_supervisor(settings) as sup:
        adopted = await sup.get("fake")
        assert (adopted.state, adopted.pid, adopted.port) == (State.READY, view.pid, view.port)
        assert httpx.get(f"{adopted.base_url}/health").status_code == 200
        assert (await sup.load(_spec(fake_model(tmp_path)))).pid == view.pid  # no duplicate
        assert (await sup.unload("fake")).state is State.STOPPED
        assert group_alive(view.pid) == []


async def test_adoption_refuses_what_does_not_match(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    spec = _spec(fake_model(tmp_path))
    async with running_supervisor(settings) as sup:  # a real instance, then its row is doctored
        real = await sup.load(spec)
        await sup.wait_ready("fake", 30)
        await sup.abandon()
    store = InstanceStore(Database(settings.db_path))
    [record] = store.load_all()
    assert real.pid is not None
    bystander = await asyncio.create_subprocess_exec("sleep", "60", start_new_session=True)
    try:
        from dataclasses import replace

        store.save(replace(record, port=(record.port or 0) + 1))  # ours, but not on that port
        store.save(replace(record, name="gone", pid=2**22 + 17))  # a pid that does not exist
        store.save(replace(record, name="other", pid=bystander.pid))  # pid of another program
        async with running_supervisor(settings) as sup:
            assert await sup.list() == []
        assert group_alive(real.pid) == []  # ours but unhealthy: the whole group was stopped
        assert bystander.returncode is None
        assert os.getpgid(bystander.pid) == bystander.pid  # left alone: not ours
        assert store.load_all() == []
        assert [t.event for t in store.transitions("gone")][-2:] == [Event.CRASHED, Event.EXITED]
    finally:
        bystander.kill()
        await bystander.wait()


# -- the external instance -----------------------------------------------------------------------


async def test_external_instance_is_shown_never_stopped(tmp_path: Path) -> None:
    from tests.fake_vllm.launch import running_fake_vllm

    with running_fake_vllm(tmp_path / "ext", served_name="outside") as ext:
        base = make_settings(tmp_path)
        settings = base.model_copy(update={"external": ExternalSettings(endpoint=ext.base_url)})
        async with running_supervisor(settings) as sup:
            [view] = await sup.list()
            assert (view.name, view.external, view.state, view.base_url) == (
                "outside", True, State.READY, ext.base_url
            )  # fmt: skip
            for action in (sup.unload("outside"), sup.restart("outside")):
                with pytest.raises(Conflict, match="never"):
                    await action
            with pytest.raises(Conflict, match="not allowed") as refused:
                await sup.sleep("outside", 1)
            assert "allow_sleep" in refused.value.hint
            with pytest.raises(Conflict, match="external"):
                await sup.load(EngineSpec(str(fake_model(tmp_path)), served_name="outside"))
        assert ext.proc.poll() is None
        allowed = base.model_copy(
            update={"external": ExternalSettings(endpoint=ext.base_url, allow_sleep=True)}
        )
        async with running_supervisor(allowed) as sup:
            assert (await sup.sleep("outside", 1)).state is State.SLEEPING
            assert (await sup.wake("outside")).state is State.READY
        assert httpx.get(ext.base_url + "/health").status_code == 200
    async with running_supervisor(settings) as sup:  # now nothing answers there
        [gone] = await sup.list()
        assert gone.state is State.FAILED
        assert gone.last_error is not None
