"""Daemon start: decide, for every instance row left by an earlier daemon, adopt or stop.

Adopt only when all four match: the pid exists, its cmdline is the argv we launched, it listens
on the recorded port, and ``/v1/models`` there lists the served name (a process still starting
or stopping needs only the first two). Otherwise the row is walked through the transition table
to ``stopped`` and deleted, and:

* if the process is ours (cmdline matches) but unhealthy, its whole group is killed — never an
  orphan;
* if the leader is gone but members of its group are left (EngineCore/Worker orphans), they are
  killed too, provided they were started after the instance was;
* if the pid now belongs to another program, it is left alone — it is not ours.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import httpx
import psutil

from vllm_mcp.core.instance import InstanceRecord, Transition
from vllm_mcp.core.lifecycle import Event, State, next_state
from vllm_mcp.engine.client import VllmClient
from vllm_mcp.errors import UpstreamError
from vllm_mcp.supervisor.process import cmdline_matches, group_members, listens_on, terminate_group
from vllm_mcp.supervisor.repository import InstanceRepository
from vllm_mcp.supervisor.views import base_url

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
CREATE_SLACK_S = 2.0
#: The edges that take a record the daemon could not adopt to ``stopped``.
_TO_STOPPED: dict[State, tuple[Event, ...]] = {
    State.STARTING: (Event.START_FAILED, Event.EXITED),
    State.READY: (Event.CRASHED, Event.EXITED),
    State.SLEEPING: (Event.CRASHED, Event.EXITED),
    State.WAKING: (Event.CRASHED, Event.EXITED),
    State.STOPPING: (Event.EXITED,),
    State.FAILED: (Event.EXITED,),
}


@dataclass(frozen=True)
class Verdict:
    adopt: bool
    reason: str
    process: psutil.Process | None = None  # set when the process is ours
    ours: bool = False
    gone: bool = False  # the recorded leader no longer exists


async def judge(record: InstanceRecord, host: str, transport: httpx.AsyncBaseTransport | None) -> Verdict:
    """Whether the process of ``record`` can be adopted."""
    found = _our_process(record)
    if isinstance(found, Verdict):
        return found
    if record.state in (State.STARTING, State.STOPPING):
        return Verdict(True, "still " + record.state.value, found, ours=True)
    problem = await _serving_problem(record, found, host, transport)
    if problem is not None:
        return Verdict(False, problem, found, ours=True)
    return Verdict(True, "pid, cmdline, port and served name match", found, ours=True)


def _our_process(record: InstanceRecord) -> psutil.Process | Verdict:
    """The live process that is the one we launched, or the verdict why there is none."""
    if record.pid is None or not record.argv:
        return Verdict(False, "no process was recorded")
    try:
        proc = psutil.Process(record.pid)
        cmdline = proc.cmdline()
        alive = proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        alive = False
    if not alive:
        return Verdict(False, f"process {record.pid} is gone", gone=True)
    if not cmdline_matches(cmdline, record.argv):
        return Verdict(False, f"pid {record.pid} now runs another program")
    return proc


async def _serving_problem(
    record: InstanceRecord, proc: psutil.Process, host: str, transport: httpx.AsyncBaseTransport | None
) -> str | None:
    if record.port is None or not listens_on(proc, record.port):
        return f"process {record.pid} does not listen on port {record.port}"
    async with VllmClient(base_url(host, record.port), transport=transport) as client:
        try:
            names = [card.id for card in await client.models(timeout=PROBE_TIMEOUT_S)]
        except UpstreamError as exc:
            return f"/v1/models did not answer: {exc.message}"
    if record.name not in names:
        return f"it does not serve {record.name} (serves {names})"
    return None


async def clean_up(record: InstanceRecord, verdict: Verdict, *, grace_s: float) -> None:
    """Kill what is left of a record's process group if it is ours (see the module doc)."""
    if record.pid is None:
        return
    if verdict.ours:
        log.warning("instance %s: stopping its unhealthy process group (%s)", record.name, verdict.reason)
        await terminate_group(None, record.pid, grace_s=grace_s)
        return
    if not verdict.gone:
        return  # the pid belongs to someone else now
    started = (record.started_at or 0.0) - CREATE_SLACK_S
    orphans = [p for p in group_members(record.pid) if _created_after(p, started)]
    if orphans:
        log.warning("instance %s: killing %d orphaned engine processes", record.name, len(orphans))
        await terminate_group(None, record.pid, grace_s=grace_s)


def mark_stopped(repo: InstanceRepository, record: InstanceRecord, reason: str, now: float) -> None:
    """Walk the record to ``stopped`` through the table (each edge recorded), then drop the row."""
    for event in _TO_STOPPED.get(record.state, ()):
        new = next_state(record.state, event)
        transition = Transition(record.name, now, record.state, new, event, f"daemon restart: {reason}")
        record = replace(record, state=new, state_since=now, pid=None)
        repo.save(record, transition)
    repo.delete(record.name)


def _created_after(proc: psutil.Process, when: float) -> bool:
    try:
        return proc.create_time() >= when
    except psutil.Error:
        return False
