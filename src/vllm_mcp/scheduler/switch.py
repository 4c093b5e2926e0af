"""Switching models: bring B up, and only once it serves, retire A.

1. If B is sleeping, wake it; if it is starting, join it; if it is stopped or unknown, load it —
   after the memory check (``admit``) unless the request is forced.
2. If the check says B does not fit beside A, and A is to be retired anyway, retire A first
   (a short gap in service rather than a start that cannot fit), then check again.
3. Wait until B is ready (the switch runs in its own task, so a short client timeout does not
   abandon it; the caller gets the current phase back and can poll).
4. Only then sleep (or unload) A, so A keeps serving requests until B can take them.
5. If B fails, A is left as it was — or, if A was put to sleep early in step 2, woken again —
   and the failure is the switch's result.

One switch per target at a time: a second request for the same target joins the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from vllm_mcp.api.instances import InstanceView, LoadRequest
from vllm_mcp.api.manager import SwitchRequest, SwitchStatus
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import State
from vllm_mcp.errors import DoesNotFit, InvalidRequest, NotFound, VllmMcpError

log = logging.getLogger(__name__)
START_LIMIT_S = 3600.0  # the switch task's own bound on bringing B up

#: The memory gate before a cold load: raises ``DoesNotFit`` (the optimizer's check_before_load).
Admit = Callable[[EngineSpec], Awaitable[None]]


async def _admit_all(spec: EngineSpec) -> None:
    return None


class SupervisorLike(Protocol):
    def spec_from_request(self, request: LoadRequest) -> EngineSpec: ...
    async def load(self, spec: EngineSpec, *, force: bool = False) -> InstanceView: ...
    async def wait_ready(self, name: str, timeout_s: float) -> InstanceView: ...
    async def get(self, name: str) -> InstanceView: ...
    async def list(self) -> list[InstanceView]: ...
    async def wake(self, name: str) -> InstanceView: ...
    async def sleep(self, name: str, level: int) -> InstanceView: ...
    async def unload(self, name: str) -> InstanceView: ...


@dataclass
class _Run:
    request: SwitchRequest
    status: SwitchStatus
    previous: InstanceView | None  # A as last seen by this switch
    retired_early: bool = False  # step 2 happened
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Switcher:
    def __init__(self, supervisor: SupervisorLike, admit: Admit = _admit_all) -> None:
        self._sup = supervisor
        self._admit = admit
        self._runs: dict[str, _Run] = {}

    async def switch(self, request: SwitchRequest) -> SwitchStatus:
        """Start (or join) the switch and wait up to ``request.timeout_s`` for it to finish."""
        spec = self._sup.spec_from_request(request.to)  # validates before anything happens
        previous = await self._previous(request, spec.served_name)
        run = self._runs.get(spec.served_name)
        if run is None or run.done.is_set():
            run = _Run(request, SwitchStatus(phase="bringing_up", previous=previous), previous)
            self._runs[spec.served_name] = run
            run.task = asyncio.create_task(self._drive(run, spec), name=f"switch-to-{spec.served_name}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(run.done.wait()), request.timeout_s)
        return run.status

    async def _previous(self, request: SwitchRequest, target: str) -> InstanceView | None:
        if request.from_name is not None:
            if request.from_name == target:
                raise InvalidRequest(
                    "from_name is the switch target itself",
                    field="from_name",
                    hint="Name the instance to retire, or leave from_name out.",
                )
            return await self._sup.get(request.from_name)  # NotFound names the known ones
        others = [
            i
            for i in await self._sup.list()
            if i.name != target and not i.external and i.state in (State.READY, State.STARTING)
        ]
        if len(others) > 1 and request.then != "keep":
            names = ", ".join(i.name for i in others)
            raise InvalidRequest(
                f"several instances could be retired ({names})",
                field="from_name",
                hint="Say which one with from_name, or then=keep.",
            )
        return others[0] if others else None

    async def _drive(self, run: _Run, spec: EngineSpec) -> None:
        try:
            target = await self._bring_up(run, spec)  # 1, 2
            run.status = SwitchStatus(phase="bringing_up", target=target, previous=run.previous)
            target = await self._sup.wait_ready(spec.served_name, START_LIMIT_S)  # 3
            if target.state is not State.READY:
                raise VllmMcpError(f"{spec.served_name} did not become ready (state {target.state})")
            run.status = SwitchStatus(phase="retiring", target=target, previous=run.previous)
            if run.previous is not None and not run.retired_early:  # 4
                run.previous = await self._retire(run.request, run.previous)
            message = _done_message(target, run.previous, run.request.then)
            if run.retired_early:
                message += " (retired first: the target did not fit beside it)"
            run.status = SwitchStatus(phase="done", target=target, previous=run.previous, message=message)
        except VllmMcpError as exc:  # 5
            await self._restore(run)
            run.status = SwitchStatus(
                phase="failed", target=run.status.target, previous=run.previous, message=exc.describe()
            )
        except Exception as exc:  # a switch task must always finish with a status
            log.exception("switch to %s failed unexpectedly", spec.served_name)
            run.status = SwitchStatus(phase="failed", previous=run.previous, message=str(exc))
        finally:
            run.done.set()

    async def _bring_up(self, run: _Run, spec: EngineSpec) -> InstanceView:
        """Steps 1 and 2: the target as woken, joined or started (A retired first if need be)."""
        force = run.request.to.force
        try:
            current = await self._sup.get(spec.served_name)
        except NotFound:
            current = None
        if current is not None and current.state is State.SLEEPING:
            return await self._sup.wake(spec.served_name)
        if current is not None and current.state not in (State.STOPPED, State.FAILED):
            return current  # ready, starting or waking: join it
        if not force:
            try:
                await self._admit(spec)
            except DoesNotFit:
                if run.previous is None or run.request.then == "keep":
                    raise
                run.previous = await self._retire(run.request, run.previous)
                run.retired_early = True
                await self._admit(spec)  # still no room: step 5 restores A
        return await self._sup.load(spec, force=force)

    async def _retire(self, request: SwitchRequest, previous: InstanceView) -> InstanceView:
        if request.then == "sleep":
            return await self._sup.sleep(previous.name, request.sleep_level)
        return await self._sup.unload(previous.name)

    async def _restore(self, run: _Run) -> None:
        """Step 5: wake A again if this switch put it to sleep before the target was up."""
        previous = run.previous
        if previous is None or not run.retired_early or previous.state is not State.SLEEPING:
            return
        try:
            run.previous = await self._sup.wake(previous.name)
        except VllmMcpError as exc:
            log.warning("could not wake %s after a failed switch: %s", previous.name, exc.message)

    def status(self, target: str) -> SwitchStatus:
        run = self._runs.get(target)
        if run is None:
            raise NotFound(f"no switch to {target} has been started", hint="Call switch-model first.")
        return run.status

    async def close(self) -> None:
        for run in self._runs.values():
            if run.task is not None and not run.task.done():
                run.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run.task


def _done_message(target: InstanceView, previous: InstanceView | None, then: str) -> str:
    msg = f"{target.name} is ready at {target.base_url}"
    if previous is not None and then != "keep":
        msg += f"; {previous.name} is now {previous.state.value}"
    return msg
