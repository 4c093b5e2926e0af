"""The supervisor: owns the ``vllm serve`` processes of this daemon.

One ``InstanceActor`` (an owner task) per served name does every state change; this class is
the registry and the front door: it validates requests before anything starts, decides which
actor a request goes to, and turns records into views.

Two loads of the same model at once give one instance: the registry lookup and the
registration of a new actor (and the queuing of its start) happen without an ``await`` in
between, so the second load finds the first one's actor and is answered with its state.

Persistence goes through an ``InstanceRepository`` (``vllm_mcp.store.instances.InstanceStore``
implements it): supervisor and store are sibling layers, so the daemon builds the store and
hands it in instead of the supervisor importing ``store``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from vllm_mcp.api.instances import InstanceView, LoadRequest, LogPage, PresetIn, PresetView
from vllm_mcp.config import Settings
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.instance import InstanceRecord
from vllm_mcp.core.lifecycle import State
from vllm_mcp.errors import (
    Conflict,
    EngineCrashed,
    EngineError,
    EngineStartFailed,
    EngineStartTimeout,
    InvalidRequest,
    NotFound,
)
from vllm_mcp.supervisor import recovery
from vllm_mcp.supervisor.actor import InstanceActor
from vllm_mcp.supervisor.deps import ActorDeps, StartHook, no_start_hook
from vllm_mcp.supervisor.events import EventBus, Subscription
from vllm_mcp.supervisor.external import ExternalInstance
from vllm_mcp.supervisor.launch import check_lora_path, check_model_source, detect_platform, resolve_vllm_bin
from vllm_mcp.supervisor.logs import log_path_for, read_page
from vllm_mcp.supervisor.process import AdoptedChild, Spawner, check_port, pick_port, spawn_local
from vllm_mcp.supervisor.repository import InstanceRepository
from vllm_mcp.supervisor.views import to_view

__all__ = ["StartHook", "Subscription", "Supervisor"]

log = logging.getLogger(__name__)

PRESET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_LOG_LINES = 5000
_FAILURES: dict[str, type[EngineError]] = {
    EngineStartFailed.code: EngineStartFailed,
    EngineStartTimeout.code: EngineStartTimeout,
    EngineCrashed.code: EngineCrashed,
}


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        store: InstanceRepository,
        *,
        spawner: Spawner = spawn_local,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
        on_started: StartHook | None = None,
    ) -> None:
        """``transport`` is handed to every ``VllmClient`` (tests: ``httpx.MockTransport``);
        ``on_started(view, log_text)`` runs after each successful start (the optimizer's hook)."""
        self.settings = settings
        self._store = store
        self._clock = clock
        self._transport = transport
        self._actors: dict[str, InstanceActor] = {}
        self._bus = EventBus()
        self._external: ExternalInstance | None = None
        self._deps = ActorDeps(
            settings=settings,
            repo=store,
            bus=self._bus,
            spawner=spawner,
            clock=clock,
            transport=transport,
            on_started=on_started or no_start_hook,
            platform=detect_platform(settings),
            reserve_port=self._reserve_port,
            retire=self._forget,
        )

    # -- daemon lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Adopt what an earlier daemon left running, mark the rest stopped, attach the
        external instance."""
        self.settings.log_dir.mkdir(parents=True, exist_ok=True)
        for record in self._store.load_all():
            await self._recover(record)
        if self.settings.external.endpoint is not None:
            self._external = ExternalInstance(self.settings, clock=self._clock, transport=self._transport)
            await self._external.refresh()

    async def stop(self) -> None:
        """Daemon shutdown: stop every instance this daemon owns (never the external one)."""
        actors = list(self._actors.values())
        results = await asyncio.gather(*(a.call("shutdown") for a in actors), return_exceptions=True)
        for actor, result in zip(actors, results, strict=True):
            if isinstance(result, BaseException):
                log.error("instance %s did not shut down cleanly: %s", actor.name, result)
            await actor.wait_retired()
        if self._external is not None:
            await self._external.aclose()
        self._bus.close()

    async def abandon(self) -> None:
        """Let go of every instance without stopping it or writing anything — what a killed
        daemon leaves behind. The next ``start()`` over the same database adopts them."""
        for actor in list(self._actors.values()):
            await actor.abandon()
        self._actors.clear()
        if self._external is not None:
            await self._external.aclose()
        self._bus.close()

    # -- loading ---------------------------------------------------------------------------

    def spec_from_request(self, request: LoadRequest) -> EngineSpec:
        """Request fields over the preset's over ``engine_defaults``; validated (``InvalidRequest``).

        The two memory knobs are one choice: a request that sets one drops the other from the
        preset, and the defaults fill in only when neither is set.
        """
        fields: dict[str, Any] = {}
        if request.preset is not None:
            fields.update(self._preset(request.preset).given())
        given = request.given()
        if "gpu_memory_utilization" in given:
            fields.pop("kv_cache_memory_bytes", None)
        if "kv_cache_memory_bytes" in given:
            fields.pop("gpu_memory_utilization", None)
        fields.update(given)
        return self._with_defaults(fields)

    async def load_request(self, request: LoadRequest) -> InstanceView:
        """``spec_from_request`` → ``load`` → (if ``wait``) ``wait_ready`` bounded by ``timeout_s``."""
        view = await self.load(self.spec_from_request(request), force=request.force)
        if request.wait:
            view = await self.wait_ready(view.name, request.timeout_s)
        return view

    async def load(self, spec: EngineSpec, *, force: bool = False) -> InstanceView:
        """Start ``spec`` and return at once (state ``starting``), or return the instance that
        already serves the same identity. A different model under that served name is a
        ``Conflict`` unless ``force`` (then that one is unloaded first). Bad input raises
        before anything is started or written."""
        check_model_source(self.settings, spec)
        resolve_vllm_bin(self.settings)
        name = spec.served_name
        if self._external is not None and self._external.name == name:
            raise Conflict(
                f"the served name {name} belongs to the external vLLM at {self._external.url}",
                hint="Pick another served_name.",
            )
        while (actor := self._actors.get(name)) is not None and not actor.retired:
            if actor.spec.identity() == spec.identity():
                port = actor.port  # the port it holds, or the one its queued start will use
                if actor.record.state is State.FAILED or port is None:
                    port = self._reserve_port(name, spec.port, port)
                return self._view(await actor.call("start", spec=spec, port=port))
            if not force:
                raise Conflict(
                    f"the served name {name} is taken by {actor.spec.model} ({actor.record.state.value})",
                    hint="Unload it first, pick another served_name, or load with force=true.",
                    instance=name,
                )
            await actor.call("stop")
            await actor.wait_retired()
        port = self._reserve_port(name, spec.port, None)  # PortInUse before anything starts
        now = self._clock()
        actor = InstanceActor(
            InstanceRecord(name, spec, State.STOPPED, state_since=now, created_at=now), self._deps
        )
        self._actors[name] = actor
        reply = actor.submit("start", spec=spec, port=port)
        actor.run()
        return self._view(await asyncio.shield(reply))

    async def wait_ready(self, name: str, timeout_s: float) -> InstanceView:
        """Until ``name`` is ready (or sleeping), at most ``timeout_s``; then its current view.

        Raises the instance's failure (``EngineStartFailed``/``EngineStartTimeout``/
        ``EngineCrashed``, with exit code and log tail) if it failed.
        """
        if self._external is not None and name == self._external.name and name not in self._actors:
            return await self._external.refresh()
        actor = self._actor(name)
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._bus.subscribe(name) as events:
            while True:
                record = actor.record
                if record.state in (State.READY, State.SLEEPING, State.STOPPED, State.SHUTDOWN):
                    return self._view(record)
                if record.state is State.FAILED:
                    raise _failure(record)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._view(record)
                await events.get(remaining)

    # -- commands on one instance ----------------------------------------------------------

    async def unload(self, name: str) -> InstanceView:
        """Stop the instance (whole process group) and forget it; returns its final view."""
        if self._is_external(name):
            raise self._ext().refuse("unload")
        return self._view(await self._actor(name).call("stop"))

    async def sleep(self, name: str, level: int) -> InstanceView:
        if level not in (1, 2):
            raise InvalidRequest(f"level: must be 1 or 2, got {level}", field="level")
        if self._is_external(name):
            return await self._ext().sleep(level)
        return self._view(await self._actor(name).call("sleep", level=level))

    async def wake(self, name: str) -> InstanceView:
        if self._is_external(name):
            return await self._ext().wake()
        return self._view(await self._actor(name).call("wake"))

    async def restart(self, name: str) -> InstanceView:
        """Stop and start again with the same spec; returns at once in ``starting``."""
        if self._is_external(name):
            raise self._ext().refuse("restart")
        return self._view(await self._actor(name).call("restart"))

    async def load_lora(self, name: str, lora_name: str, lora_path: str) -> InstanceView:
        if self._is_external(name):
            raise self._ext().refuse("change adapter")
        actor = self._actor(name)
        path = check_lora_path(self.settings, lora_path)
        return self._view(await actor.call("load_lora", lora_name=lora_name, lora_path=path))

    async def unload_lora(self, name: str, lora_name: str) -> InstanceView:
        if self._is_external(name):
            raise self._ext().refuse("change adapter")
        return self._view(await self._actor(name).call("unload_lora", lora_name=lora_name))

    # -- reading ---------------------------------------------------------------------------

    async def get(self, name: str) -> InstanceView:
        if self._is_external(name):
            return await self._ext().refresh()
        return self._view(self._actor(name).record)

    async def list(self) -> builtins.list[InstanceView]:
        views = [self._view(a.record) for a in self._live_actors()]
        if self._external is not None:
            views.append(await self._external.refresh())
        return sorted(views, key=lambda v: v.name)

    async def logs(self, name: str, *, tail_lines: int = 200, before: int | None = None) -> LogPage:
        """A page of the instance's log: ``tail_lines`` lines ending before line ``before``."""
        if not 1 <= tail_lines <= MAX_LOG_LINES:
            raise InvalidRequest(
                f"tail_lines: must be 1-{MAX_LOG_LINES}, got {tail_lines}", field="tail_lines"
            )
        if before is not None and before < 0:
            raise InvalidRequest(f"before: must be ≥ 0, got {before}", field="before")
        if self._is_external(name):
            raise NotFound(
                f"{name} is the external vLLM; its log is not kept by this daemon",
                hint="Read the log where that server runs.",
            )
        actor = self._actors.get(name)
        path = log_path_for(self.settings.log_dir, name)
        if actor is not None and actor.record.log_path:
            path = Path(actor.record.log_path)
        elif not path.exists():
            raise self._not_found(name)
        return await asyncio.to_thread(read_page, path, tail_lines=tail_lines, before=before)

    def events(self, name: str | None = None) -> Subscription:
        """Transitions (and progress notes) of ``name`` (all when None) from now on, as they
        happen. Registered at once; close it (``with``/``aclose``) to unsubscribe."""
        return self._bus.subscribe(name)

    # -- presets ---------------------------------------------------------------------------

    async def save_preset(self, preset: PresetIn) -> PresetView:
        """Create or replace a preset; its fields must make a valid spec (checked now)."""
        if not PRESET_NAME_RE.fullmatch(preset.name):
            raise InvalidRequest(
                f"name: {preset.name!r} is not a valid preset name",
                hint="use letters, digits and . _ - (at most 64), starting with a letter or digit",
                field="name",
            )
        self._with_defaults(preset.given())
        now = self._clock()
        old = self._store.get_preset(preset.name)
        view = PresetView(**preset.model_dump(), created_at=old.created_at if old else now, updated_at=now)
        self._store.save_preset(view)
        return view

    async def list_presets(self) -> builtins.list[PresetView]:
        return self._store.list_presets()

    async def get_preset(self, name: str) -> PresetView:
        return self._preset(name)

    async def delete_preset(self, name: str) -> PresetView:
        preset = self._preset(name)
        self._store.delete_preset(name)
        return preset

    # -- internals -------------------------------------------------------------------------

    async def _recover(self, record: InstanceRecord) -> None:
        if record.state in (State.STOPPED, State.SHUTDOWN):
            self._store.delete(record.name)
            return
        grace = self.settings.engine.stop_timeout_s
        verdict = await recovery.judge(record, self.settings.engine.host, self._transport)
        if record.state is State.FAILED:
            if record.pid is not None and not verdict.adopt:
                await recovery.clean_up(record, verdict, grace_s=grace)
                record = replace(record, pid=None)
                self._store.save(record)
            child = AdoptedChild(verdict.process) if verdict.adopt and verdict.process else None
            self._register(InstanceActor(record, self._deps, child=child), resume=False)
            return
        if verdict.adopt and verdict.process is not None:
            log.info("instance %s: adopted pid %s (%s)", record.name, record.pid, verdict.reason)
            self._register(
                InstanceActor(record, self._deps, child=AdoptedChild(verdict.process)), resume=True
            )
            return
        log.info("instance %s: not adopted (%s); marking it stopped", record.name, verdict.reason)
        await recovery.clean_up(record, verdict, grace_s=grace)
        recovery.mark_stopped(self._store, record, verdict.reason, self._clock())

    def _register(self, actor: InstanceActor, *, resume: bool) -> None:
        self._actors[actor.name] = actor
        actor.run(resume=resume)

    def _forget(self, actor: InstanceActor) -> None:
        if self._actors.get(actor.name) is actor:
            del self._actors[actor.name]

    def _reserve_port(self, name: str, required: int | None, preferred: int | None) -> int:
        """A port for ``name``: ``required`` or ``PortInUse``; else ``preferred`` if free; else
        the first free one in the range. Ports held by other instances count as taken."""
        host = self.settings.engine.host
        taken = {a.port for a in self._live_actors() if a.name != name and a.port is not None}
        if required is not None:
            check_port(host, required, taken)
            return required
        if preferred is not None:
            with contextlib.suppress(Conflict):
                check_port(host, preferred, taken)
                return preferred
        engine = self.settings.engine
        return pick_port(host, engine.port_range_start, engine.port_range_end, taken)

    def _with_defaults(self, fields: dict[str, Any]) -> EngineSpec:
        if not fields.get("model"):
            raise InvalidRequest("model: give a model id or path, or a preset name", field="model")
        defaults = self.settings.engine_defaults
        merged: dict[str, Any] = {
            "tensor_parallel_size": defaults.tensor_parallel_size,
            "quantization": defaults.quantization,
            "max_model_len": defaults.max_model_len,
            "enforce_eager": defaults.enforce_eager,
        }
        if "gpu_memory_utilization" not in fields and "kv_cache_memory_bytes" not in fields:
            if defaults.kv_cache_memory_bytes is not None:
                merged["kv_cache_memory_bytes"] = defaults.kv_cache_memory_bytes
            else:
                merged["gpu_memory_utilization"] = defaults.gpu_memory_utilization
        merged.update(fields)
        for key in ("gpus", "extra_flags"):
            if isinstance(merged.get(key), builtins.list):
                merged[key] = tuple(merged[key])
        return EngineSpec(**merged)

    def _preset(self, name: str) -> PresetView:
        preset = self._store.get_preset(name)
        if preset is None:
            known = ", ".join(p.name for p in self._store.list_presets()) or "none saved yet"
            raise NotFound(f"no preset named {name}", hint=f"known presets: {known}", preset=name)
        return preset

    def _live_actors(self) -> builtins.list[InstanceActor]:
        return [a for a in self._actors.values() if not a.retired]

    def _actor(self, name: str) -> InstanceActor:
        actor = self._actors.get(name)
        if actor is None or actor.retired:
            raise self._not_found(name)
        return actor

    def _not_found(self, name: str) -> NotFound:
        names = sorted(a.name for a in self._live_actors())
        if self._external is not None:
            names.append(self._external.name)
        known = ", ".join(names) if names else "none (load one with load-model)"
        return NotFound(f"no instance named {name}", hint=f"known instances: {known}", instance=name)

    def _is_external(self, name: str) -> bool:
        return self._external is not None and name == self._external.name and name not in self._actors

    def _ext(self) -> ExternalInstance:
        assert self._external is not None
        return self._external

    def _view(self, record: InstanceRecord) -> InstanceView:
        return to_view(record, self.settings.engine.host)


def _failure(record: InstanceRecord) -> EngineError:
    info = record.last_error
    if info is None:
        return EngineError(f"{record.name} failed", instance=record.name)
    cls = _FAILURES.get(info.code, EngineError)
    return cls(
        f"{record.name}: {info.message}",
        instance=record.name,
        exit_code=info.exit_code,
        log_tail=info.log_tail,
    )
