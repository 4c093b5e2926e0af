"""Switching models: bring B up, and only once it serves, retire A.

1. If B is sleeping, wake it; if it is stopped or unknown, load it; if it is starting, join it.
2. Wait until B is ready (the switch runs in its own task, so a short client timeout does not
   abandon it; the caller gets the current phase back and can poll).
3. Only then sleep (or unload) A, so A keeps serving requests until B can take them.
4. If B fails, A is left as it was, and the failure is the switch's result.

One switch per target at a time: a second request for the same target joins the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Protocol

from vllm_mcp.api.instances import InstanceView, LoadRequest
from vllm_mcp.api.manager import SwitchRequest, SwitchStatus
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import State
from vllm_mcp.errors import InvalidRequest, NotFound, VllmMcpError

log = logging.getLogger(__name__)
START_LIMIT_S = 3600.0  # the switch task's own bound on bringing B up


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
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Switcher:
    def __init__(self, supervisor: SupervisorLike) -> None:
        self._sup = supervisor
        self._runs: dict[str, _Run] = {}

    async def switch(self, request: SwitchRequest) -> SwitchStatus:
        """Start (or join) the switch and wait up to ``request.timeout_s`` for it to finish."""
        spec = self._sup.spec_from_request(request.to)  # validates before anything happens
        previous = await self._previous(request, spec.served_name)
        run = self._runs.get(spec.served_name)
        if run is None or run.done.is_set():
            run = _Run(request, SwitchStatus(phase="bringing_up", previous=previous))
            self._runs[spec.served_name] = run
            run.task = asyncio.create_task(
                self._drive(run, spec, previous), name=f"switch-to-{spec.served_name}"
            )
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

    async def _drive(self, run: _Run, spec: EngineSpec, previous: InstanceView | None) -> None:
        try:
            target = await self._bring_up(spec, run.request.to.force)
            run.status = SwitchStatus(phase="bringing_up", target=target, previous=previous)
            target = await self._sup.wait_ready(spec.served_name, START_LIMIT_S)
            if target.state is not State.READY:
                raise VllmMcpError(f"{spec.served_name} did not become ready (state {target.state})")
            run.status = SwitchStatus(phase="retiring", target=target, previous=previous)
            if previous is not None and run.request.then != "keep":
                if run.request.then == "sleep":
                    previous = await self._sup.sleep(previous.name, run.request.sleep_level)
                else:
                    previous = await self._sup.unload(previous.name)
            run.status = SwitchStatus(
                phase="done",
                target=target,
                previous=previous,
                message=_done_message(target, previous, run.request.then),
            )
        except VllmMcpError as exc:
            run.status = SwitchStatus(
                phase="failed", target=run.status.target, previous=previous, message=exc.describe()
            )
        except Exception as exc:  # a switch task must always finish with a status
            log.exception("switch to %s failed unexpectedly", spec.served_name)
            run.status = SwitchStatus(phase="failed", previous=previous, message=str(exc))
        finally:
            run.done.set()

    async def _bring_up(self, spec: EngineSpec, force: bool) -> InstanceView:
        try:
            current = await self._sup.get(spec.served_name)
        except NotFound:
            return await self._sup.load(spec, force=force)
        if current.state is State.SLEEPING:
            return await self._sup.wake(spec.served_name)
        if current.state in (State.STOPPED, State.FAILED):
            return await self._sup.load(spec, force=force)
        return current  # ready, starting or waking: join it

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
