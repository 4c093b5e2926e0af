"""Processes: spawn ``vllm serve`` in its own session, watch it, and take its whole group down.

Rules (ARCHITECTURE.md, FACTS.md):

* argv lists only, never a shell; ``start_new_session=True`` so the child leads a new process
  group (pgid == pid) that also holds vLLM's ``EngineCore`` and ``Worker`` children.
* Stop = SIGTERM to the group → bounded wait → SIGKILL to the group → reap. SIGKILL of the API
  server alone orphans EngineCore/Worker (reparented to PID 1, still running), so "stopped"
  means *no live member of the group is left*, not "the leader exited".
* A ``Child`` is what the owner task watches: our own child (``LocalChild``, reaped by asyncio's
  child watcher, so an exit is seen at once) or an adopted process of an earlier daemon
  (``AdoptedChild``; not our child, so its death is noticed by polling psutil).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import psutil

from vllm_mcp.errors import Conflict, EngineStartFailed, PortInUse

log = logging.getLogger(__name__)

ADOPTED_POLL_S = 0.5  # death of an adopted process is noticed within this (goal: < 2 s)
GROUP_POLL_S = 0.05
KILL_WAIT_S = 10.0  # after SIGKILL: how long to wait for the kernel to finish the group off


class Child(Protocol):
    """A running engine process as its owner task sees it."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int | None:
        """Until the process has exited (and, for our own child, been reaped); its exit code,
        negative for a signal, or None when unknown (adopted processes)."""
        ...


class Spawner(Protocol):
    async def __call__(self, argv: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Child:
        """Start ``argv`` in a new session with stdout+stderr appended to ``log_path``."""
        ...


class LocalChild:
    """Our own child: asyncio reaps it, so ``wait`` returns as soon as it exits."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def wait(self) -> int | None:
        return await self._proc.wait()


class AdoptedChild:
    """A process an earlier daemon started. Not our child: poll psutil to see it go."""

    def __init__(self, proc: psutil.Process, poll_s: float = ADOPTED_POLL_S) -> None:
        self._proc = proc
        self._poll_s = poll_s

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None

    async def wait(self) -> int | None:
        while _alive(self._proc):  # noqa: ASYNC110 - nothing to wait on but /proc: poll it
            await asyncio.sleep(self._poll_s)
        return None


async def spawn_local(argv: Sequence[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Child:
    """The default spawner. Raises ``EngineStartFailed`` if the executable cannot be run."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise EngineStartFailed(
                f"cannot run {argv[0]}: {exc.strerror or exc}",
                hint="Set engine.vllm_bin to the vllm executable (`vllm-mcp config show`).",
                exit_code=None,
                log_tail="",
            ) from exc
    return LocalChild(proc)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []  # fast path: nobody in the group
    except PermissionError:
        pass  # someone else's group shares the number: scan to be sure
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _wait_group_gone(pgid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if not group_members(pgid):
            return True
        await asyncio.sleep(GROUP_POLL_S)
    return not group_members(pgid)


async def terminate_group(child: Child | None, pgid: int, *, grace_s: float) -> bool:
    """SIGTERM the group, wait up to ``grace_s`` for every member to go, then SIGKILL and reap.

    Returns True when SIGKILL was needed. Never returns while a member is alive, unless it
    survives SIGKILL for ``KILL_WAIT_S`` (a process stuck in the kernel), which is logged.
    """
    _signal_group(pgid, signal.SIGTERM)
    killed = False
    if not await _wait_group_gone(pgid, time.monotonic() + grace_s):
        killed = True
        log.warning("process group %d ignored SIGTERM for %.1f s: SIGKILL", pgid, grace_s)
        _signal_group(pgid, signal.SIGKILL)
        if not await _wait_group_gone(pgid, time.monotonic() + KILL_WAIT_S):
            log.error("process group %d still has members after SIGKILL", pgid)
    if child is not None:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            await asyncio.wait_for(child.wait(), KILL_WAIT_S)
    return killed


def cmdline_matches(cmdline: Sequence[str], argv: Sequence[str]) -> bool:
    """Whether a process's cmdline is the one we launched.

    Only the arguments after the executable must be equal (``serve <model> --served-model-name
    … --host … --port …``: specific to one instance). The head may differ: the kernel runs a
    console script through its interpreter (``[python, /path/vllm, serve, …]``) and a shell shim
    may ``exec python -m …``.
    """
    rest = list(argv[1:])
    if not rest or len(cmdline) <= len(rest):
        return False
    return list(cmdline[len(cmdline) - len(rest) :]) == rest


def listens_on(proc: psutil.Process, port: int) -> bool:
    try:
        conns = proc.net_connections(kind="inet")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


# -- ports ---------------------------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` now (SO_REUSEADDR, as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_port(host: str, port: int, reserved: set[int]) -> None:
    """Raise ``PortInUse`` if ``port`` is held by another instance or bound by anyone."""
    if port in reserved or not port_is_free(host, port):
        raise PortInUse(f"port {port} on {host} is already in use", port=port, field="port")


def pick_port(host: str, start: int, end: int, reserved: set[int]) -> int:
    """The first port in ``[start, end]`` not reserved by an instance and free to bind."""
    for port in range(start, end + 1):
        if port not in reserved and port_is_free(host, port):
            return port
    raise Conflict(
        f"no free port in the range {start}-{end} on {host}",
        hint="Unload an instance, or widen engine.port_range_start/engine.port_range_end.",
    )
