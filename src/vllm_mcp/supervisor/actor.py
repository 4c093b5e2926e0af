"""The owner task of one instance: the only code that changes its state.

Public calls put a command on the inbox and await its reply; helper tasks (the exit watcher,
the readiness probe, the crash-restart timer) put notes on the same inbox. One message is
handled at a time, so there are no locks and no state read ever races a mutation.

Invariants kept here:

* Every state change goes through ``next_state`` (an edge off the table raises before anything
  is done), is written with its transition in one transaction, then published.
* A note carries the *generation* of the process it is about; a start or stop bumps the
  generation, so a late note about an older process is ignored.
* ``stopped`` means the whole process group is gone (``terminate_group``), not just the leader.
* When the instance is ``stopped``/``shutdown`` and nothing is queued, the task retires: the
  supervisor forgets it and a ``stopped`` row is deleted (the transitions stay as history).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vllm_mcp.api.instances import InstanceEvent
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.instance import FailureInfo, InstanceRecord, Transition
from vllm_mcp.core.lifecycle import LIVE_STATES, Event, State, next_state
from vllm_mcp.engine.client import VllmClient
from vllm_mcp.errors import (
    Conflict,
    EngineError,
    EngineStartFailed,
    UpstreamHTTPError,
    VllmMcpError,
)
from vllm_mcp.supervisor import engine_ops, lora
from vllm_mcp.supervisor.deps import ActorDeps, run_start_hook
from vllm_mcp.supervisor.launch import build_argv, child_env, resolve_vllm_bin
from vllm_mcp.supervisor.logs import begin_log, read_from, read_tail
from vllm_mcp.supervisor.process import Child, terminate_group
from vllm_mcp.supervisor.views import base_url, to_view

log = logging.getLogger(__name__)

REMNANT_GRACE_S = 3.0  # after the leader died by itself: SIGTERM the rest, this long, SIGKILL
STABLE_AFTER_S = 60.0  # ready this long before a crash: the crash-restart streak starts over


@dataclass
class _Msg:
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    reply: asyncio.Future[InstanceRecord] | None = None  # None: an internal note
    generation: int = 0


class InstanceActor:
    def __init__(self, record: InstanceRecord, deps: ActorDeps, *, child: Child | None = None) -> None:
        self._record = record
        self._deps = deps
        self._child = child
        self._inbox: asyncio.Queue[_Msg] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[Any]] = set()
        self._generation = 0
        self._crash_streak = 0
        self._client: VllmClient | None = None
        #: The spec of the latest accepted start (set when the command is queued, so a second
        #: load that arrives before the first is handled is compared with it).
        self.spec = record.spec
        #: The port this instance holds or is about to use (for the supervisor's port choice).
        self.port = record.port
        self.retired = False

    # -- the public side (called by the supervisor) ------------------------------------------

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def record(self) -> InstanceRecord:
        return self._record

    def run(self, *, resume: bool = False) -> None:
        """Start the owner task; ``resume`` picks up an adopted process where it was."""
        if resume:
            self._inbox.put_nowait(_Msg("resume"))
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"instance:{self.name}")

    def submit(self, kind: str, **args: Any) -> asyncio.Future[InstanceRecord]:
        """Queue a command now (synchronously: no other load can slip in) and return its reply."""
        if kind == "start":
            self.spec = args["spec"]
            self.port = args["port"]
        reply: asyncio.Future[InstanceRecord] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(_Msg(kind, args, reply))
        return reply

    async def call(self, kind: str, **args: Any) -> InstanceRecord:
        # shield: a caller that goes away must not cancel a command half-way through
        return await asyncio.shield(self.submit(kind, **args))

    async def abandon(self) -> None:
        """Stop the owner task without touching the process or the database (what a killed
        daemon leaves behind; used to hand an instance over, and by tests)."""
        for task in [*self._helpers, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._helpers, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._close_client()

    async def wait_retired(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    # -- the loop ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            msg = await self._inbox.get()
            await self._dispatch(msg)
            if self._record.state in (State.STOPPED, State.SHUTDOWN) and self._inbox.empty():
                await self._retire()
                return

    async def _dispatch(self, msg: _Msg) -> None:
        handler = getattr(self, f"_do_{msg.kind}")
        if msg.reply is None:
            if msg.generation and msg.generation != self._generation:
                return  # about an older process
            try:
                await handler(**msg.args)
            except Exception:
                log.exception("instance %s: handling %s failed", self.name, msg.kind)
            return
        try:
            result = await handler(**msg.args)
        except VllmMcpError as exc:
            _settle(msg.reply, exc=exc)
        except Exception as exc:
            log.exception("instance %s: %s failed", self.name, msg.kind)
            _settle(msg.reply, exc=VllmMcpError(f"internal error during {msg.kind}: {exc}"))
        else:
            _settle(msg.reply, result=result)

    async def _retire(self) -> None:
        # Synchronous up to the first await: a new actor for this name may be registered (and
        # write its row) right after, so the row delete and the hand-back happen before it can.
        self.retired = True
        if self._record.state is State.STOPPED:
            self._deps.repo.delete(self.name)
        self._deps.retire(self)
        self._cancel_helpers()
        await self._close_client()

    # -- commands ----------------------------------------------------------------------------

    async def _do_start(self, spec: EngineSpec, port: int) -> InstanceRecord:
        state = self._record.state
        if state in LIVE_STATES:
            return self._record  # already loading or loaded (the supervisor checked the identity)
        next_state(state, Event.START)
        if self._record.pid is not None:  # a failed engine kept after a failed wake
            await self._kill(grace=self._deps.settings.engine.stop_timeout_s)
        return await self._launch(spec, port)

    async def _do_stop(self) -> InstanceRecord:
        if self._record.state is State.STOPPED:
            return self._record
        await self._stop_process()
        return self._record

    async def _do_shutdown(self) -> InstanceRecord:
        if self._record.state is not State.SHUTDOWN:
            await self._stop_process()
            self._transition(Event.SHUTDOWN, detail="the daemon is shutting down")
        return self._record

    async def _do_restart(self) -> InstanceRecord:
        if self._record.state in LIVE_STATES or self._record.pid is not None:
            await self._stop_process()
        self._crash_streak = 0
        self.port = self._deps.reserve_port(self.name, self.spec.port, self._record.port)
        return await self._launch(self.spec, self.port)

    async def _do_sleep(self, level: int) -> InstanceRecord:
        if self._record.state is State.SLEEPING:
            if self._record.sleep_level == level:
                return self._record
            raise Conflict(
                f"{self.name} is already asleep at level {self._record.sleep_level}",
                hint="Wake it first, then sleep at the other level.",
            )
        next_state(self._record.state, Event.SLEEP)
        detail = await engine_ops.sleep_verified(self._vllm(), level)
        self._transition(Event.SLEEP, detail=detail, sleep_level=level)
        return self._record

    async def _do_wake(self) -> InstanceRecord:
        if self._record.state is State.READY:
            return self._record
        self._transition(Event.WAKE)
        await self._finish_wake()
        return self._record

    async def _do_load_lora(self, lora_name: str, lora_path: str) -> InstanceRecord:
        if lora.needs_load(self._record, lora_name, lora_path):
            await self._vllm().load_lora(lora_name, lora_path)
            self._save(loras={**self._record.loras, lora_name: lora_path})
            self._progress(f"LoRA adapter {lora_name} loaded from {lora_path}")
        return self._record

    async def _do_unload_lora(self, lora_name: str) -> InstanceRecord:
        lora.check_unload(self._record, lora_name)
        try:
            await self._vllm().unload_lora(lora_name)
        except UpstreamHTTPError as exc:
            if exc.status != 404:  # 404: vLLM no longer has it, which is what we want
                raise
        self._save(loras={k: v for k, v in self._record.loras.items() if k != lora_name})
        self._progress(f"LoRA adapter {lora_name} unloaded")
        return self._record

    # -- notes from helper tasks -------------------------------------------------------------

    async def _do_resume(self) -> None:
        """An adopted process: watch it again, and finish whatever it was in the middle of."""
        self._generation += 1
        self._watch(self._generation)
        self._new_client()
        state = self._record.state
        self._progress(f"adopted pid {self._record.pid} ({state.value})")
        if state is State.STARTING:
            elapsed = self._deps.clock() - (self._record.started_at or self._deps.clock())
            self._probe(self._generation, self._deps.settings.engine.start_timeout_s - elapsed)
        elif state is State.WAKING:
            await self._finish_wake()
        elif state is State.STOPPING:
            await self._stop_process()

    async def _do_exited(self, code: int | None) -> None:
        state = self._record.state
        self._generation += 1
        self._child = None
        tail = self._tail()
        if self._record.pid is not None:  # the leader is gone; EngineCore/Worker may not be
            await terminate_group(None, self._record.pid, grace_s=REMNANT_GRACE_S)
        if state is State.STARTING:
            self._cancel_helpers()
            msg = f"vLLM exited with code {code} while starting"
            self._fail(Event.START_FAILED, FailureInfo(msg, "engine_start_failed", code, tail))
        elif state in (State.READY, State.SLEEPING, State.WAKING):
            msg = f"vLLM exited by itself with code {code}" if code is not None else "vLLM exited by itself"
            self._fail(Event.CRASHED, FailureInfo(msg, "engine_crashed", code, tail))
            self._maybe_restart()
        else:
            self._save(pid=None)

    async def _do_ready(self) -> None:
        if self._record.state is not State.STARTING:
            return
        self._transition(Event.BECAME_READY, ready_at=self._deps.clock())
        view = to_view(self._record, self._deps.settings.engine.host)
        text = read_from(Path(self._record.log_path or ""), self._record.log_offset)
        self._spawn_helper(run_start_hook(self._deps.on_started, view, text))

    async def _do_start_timeout(self) -> None:
        if self._record.state is not State.STARTING:
            return
        timeout = self._deps.settings.engine.start_timeout_s
        await self._kill(grace=self._deps.settings.engine.stop_timeout_s)
        msg = f"vLLM did not become ready within {timeout:g} s; its process group was stopped"
        self._fail(Event.START_FAILED, FailureInfo(msg, "engine_start_timeout", None, self._tail()))

    async def _do_probe_failed(self, error: str) -> None:
        if self._record.state is not State.STARTING:
            return
        await self._kill(grace=self._deps.settings.engine.stop_timeout_s)
        msg = f"vLLM came up but failed its warm-up request: {error}"
        self._fail(Event.START_FAILED, FailureInfo(msg, "engine_start_failed", None, self._tail()))

    async def _do_crash_restart(self) -> None:
        if self._record.state is not State.FAILED:
            return
        try:
            self.port = self._deps.reserve_port(self.name, self.spec.port, self._record.port)
            await self._launch(self.spec, self.port, restarts=self._record.restarts + 1)
        except VllmMcpError as exc:
            log.warning("instance %s: crash restart failed: %s", self.name, exc.describe())

    # -- the work ----------------------------------------------------------------------------

    async def _launch(self, spec: EngineSpec, port: int, *, restarts: int | None = None) -> InstanceRecord:
        settings = self._deps.settings
        next_state(self._record.state, Event.START)  # off the table: raise before spawning
        vllm = resolve_vllm_bin(settings)
        argv = build_argv(vllm, spec, host=settings.engine.host, port=port, platform=self._deps.platform)
        log_path, offset = begin_log(settings.log_dir, spec.served_name, argv, self._deps.clock())
        self._generation += 1
        changes: dict[str, Any] = {
            "spec": spec,
            "port": port,
            "argv": tuple(argv),
            "log_path": str(log_path),
            "log_offset": offset,
            "started_at": self._deps.clock(),
            "ready_at": None,
            "last_error": None,
            "loras": {},
            "sleep_level": None,
        }
        if restarts is not None:
            changes["restarts"] = restarts
        try:
            env = child_env(settings, spec)
            child = await self._deps.spawner(argv, env=env, cwd=log_path.parent, log_path=log_path)
        except EngineStartFailed as exc:
            self._transition(Event.START, **changes)
            self._fail(Event.START_FAILED, FailureInfo(exc.message, exc.code, None, ""))
            raise
        self._child = child
        self._transition(Event.START, pid=child.pid, detail=f"pid {child.pid} port {port}", **changes)
        self._new_client()
        self._watch(self._generation)
        self._probe(self._generation, settings.engine.start_timeout_s)
        return self._record

    async def _stop_process(self) -> None:
        """Take the engine down: → stopping → (group gone) → stopped."""
        self._cancel_helpers()
        self._transition(Event.STOP)
        killed = await self._kill(grace=self._deps.settings.engine.stop_timeout_s)
        detail = "SIGKILL after the stop timeout" if killed else "process group exited"
        self._transition(Event.EXITED, detail=detail, pid=None, sleep_level=None, loras={})

    async def _kill(self, *, grace: float) -> bool:
        """Take the process group down on purpose: its exit note is then stale, not a crash."""
        self._generation += 1
        pid = self._record.pid
        if pid is None:
            return False
        killed = await terminate_group(self._child, pid, grace_s=grace)
        self._child = None
        return killed

    async def _finish_wake(self) -> None:
        try:
            detail = await engine_ops.wake_verified(self._vllm(), self._record.sleep_level)
        except VllmMcpError as exc:
            info = FailureInfo(f"wake failed: {exc.message}", "engine_error", None, self._tail())
            self._fail(Event.WAKE_FAILED, info, keep_pid=True)
            raise EngineError(
                f"{self.name} could not be woken: {exc.message}",
                hint="Restart it (restart-model) or unload it; its log tail is attached.",
                log_tail=info.log_tail,
            ) from exc
        self._transition(Event.WOKE, detail=detail, sleep_level=None)

    def _maybe_restart(self) -> None:
        engine = self._deps.settings.engine
        ready_at = self._record.ready_at
        if ready_at is not None and self._deps.clock() - ready_at >= STABLE_AFTER_S:
            self._crash_streak = 0
        if not engine.restart_on_crash or self._crash_streak >= engine.restart_max_attempts:
            return
        delay = min(engine.restart_backoff_s * 2**self._crash_streak, engine.restart_backoff_max_s)
        self._crash_streak += 1
        self._progress(f"restarting in {delay:g} s (attempt {self._crash_streak})")
        self._spawn_helper(self._after(delay, _Msg("crash_restart", generation=self._generation)))

    # -- helpers -----------------------------------------------------------------------------

    def _transition(self, event: Event, *, detail: str = "", **changes: Any) -> None:
        old = self._record.state
        new = next_state(old, event)
        now = self._deps.clock()
        record = replace(self._record, state=new, state_since=now, **changes)
        self._deps.repo.save(record, Transition(self.name, now, old, new, event, detail))
        self._record = record
        self._deps.bus.publish(InstanceEvent(name=self.name, state=new, event=event, at=now, detail=detail))

    def _fail(self, event: Event, info: FailureInfo, *, keep_pid: bool = False) -> None:
        pid = self._record.pid if keep_pid else None
        self._transition(event, detail=info.message, last_error=info, pid=pid)

    def _save(self, **changes: Any) -> None:
        self._record = replace(self._record, **changes)
        self._deps.repo.save(self._record)

    def _progress(self, detail: str) -> None:
        now = self._deps.clock()
        event = InstanceEvent(
            name=self.name, state=self._record.state, event="progress", at=now, detail=detail
        )
        self._deps.bus.publish(event)

    def _tail(self) -> str:
        path = self._record.log_path
        return read_tail(Path(path), self._record.log_offset) if path else ""

    def _vllm(self) -> VllmClient:
        if self._client is None:
            self._new_client()
        assert self._client is not None
        return self._client

    def _new_client(self) -> None:
        old, self._client = self._client, None
        if old is not None:
            self._spawn_helper(old.aclose())
        if self._record.port is not None:
            url = base_url(self._deps.settings.engine.host, self._record.port)
            self._client = VllmClient(url, transport=self._deps.transport, timeout=120.0)

    async def _close_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    def _watch(self, generation: int) -> None:
        child = self._child
        if child is None:
            return

        async def watch() -> None:
            code = await child.wait()
            self._inbox.put_nowait(_Msg("exited", {"code": code}, generation=generation))

        self._spawn_helper(watch())

    def _probe(self, generation: int, budget_s: float) -> None:
        client = self._vllm()
        settings = self._deps.settings

        async def probe() -> None:
            try:
                ok = await engine_ops.probe_ready(
                    client,
                    self.spec.served_name,
                    deadline=time.monotonic() + budget_s,
                    warmup=settings.engine.warmup,
                    progress=self._progress,
                )
            except VllmMcpError as exc:
                self._inbox.put_nowait(_Msg("probe_failed", {"error": exc.message}, generation=generation))
                return
            self._inbox.put_nowait(_Msg("ready" if ok else "start_timeout", generation=generation))

        self._spawn_helper(probe())

    async def _after(self, delay: float, msg: _Msg) -> None:
        await asyncio.sleep(delay)
        self._inbox.put_nowait(msg)

    def _spawn_helper(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    def _cancel_helpers(self) -> None:
        current = asyncio.current_task()
        for task in list(self._helpers):
            if task is not current:
                task.cancel()


def _settle(
    fut: asyncio.Future[InstanceRecord],
    *,
    result: InstanceRecord | None = None,
    exc: BaseException | None = None,
) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        assert result is not None
        fut.set_result(result)
