"""Process groups, cmdline matching and ports, against real subprocesses and sockets."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import group_alive
from vllm_mcp.errors import Conflict, EngineStartFailed, PortInUse
from vllm_mcp.supervisor.process import (
    check_port,
    cmdline_matches,
    pick_port,
    port_is_free,
    spawn_local,
    terminate_group,
)

# A leader that starts a grandchild in its group, like vLLM's EngineCore, then waits.
FAMILY = """
import signal, subprocess, sys, time
if sys.argv[1] == "deaf":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal,time\\n"
    + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n" if sys.argv[1] == "deaf" else "")
    + "time.sleep(600)"])
print("up", flush=True)
time.sleep(600)
"""


async def _spawn_family(tmp_path: Path, mode: str) -> tuple[int, object]:
    log = tmp_path / f"{mode}.log"
    child = await spawn_local([sys.executable, "-c", FAMILY, mode], env={}, cwd=tmp_path, log_path=log)
    deadline = time.monotonic() + 20
    while len(group_alive(child.pid)) < 2 or "up" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        await asyncio.sleep(0.05)
    return child.pid, child


@pytest.mark.anyio
async def test_terminate_group_takes_the_grandchildren_too(tmp_path: Path) -> None:
    pid, child = await _spawn_family(tmp_path, "polite")
    killed = await terminate_group(child, pid, grace_s=5)  # type: ignore[arg-type]
    assert not killed
    assert group_alive(pid) == []


@pytest.mark.anyio
async def test_terminate_group_escalates_to_sigkill_after_the_bound(tmp_path: Path) -> None:
    pid, child = await _spawn_family(tmp_path, "deaf")
    began = time.monotonic()
    killed = await terminate_group(child, pid, grace_s=1.0)  # type: ignore[arg-type]
    took = time.monotonic() - began
    assert killed
    assert 1.0 <= took < 8.0
    assert group_alive(pid) == []


@pytest.mark.anyio
async def test_spawn_of_a_missing_executable_is_engine_start_failed(tmp_path: Path) -> None:
    with pytest.raises(EngineStartFailed, match="cannot run"):
        await spawn_local([str(tmp_path / "nope")], env={}, cwd=tmp_path, log_path=tmp_path / "x.log")


def test_cmdline_matches_the_launched_argv() -> None:
    argv = ["/venv/bin/vllm", "serve", "/m/tiny", "--served-model-name", "tiny", "--port", "8200"]
    assert cmdline_matches(["/venv/bin/python", "/venv/bin/vllm", *argv[1:]], argv)
    assert cmdline_matches(["/usr/bin/python3", "-m", "tests.fake_vllm", *argv[1:]], argv)
    assert not cmdline_matches(["/venv/bin/python", "/venv/bin/vllm", *argv[1:-1], "8201"], argv)
    assert not cmdline_matches(["VLLM::EngineCore", *[""] * 20], argv)
    assert not cmdline_matches(argv[1:], argv)
    assert not cmdline_matches(["x", "serve"], ["vllm"])


def test_ports_in_use_are_refused_and_skipped() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(PortInUse) as err:
            check_port("127.0.0.1", port, set())
        assert err.value.context["port"] == port
        picked = pick_port("127.0.0.1", port, port + 5, {port + 1})
        assert picked not in (port, port + 1)
        assert port_is_free("127.0.0.1", picked)
    check_port("127.0.0.1", port, set())
    with pytest.raises(PortInUse):
        check_port("127.0.0.1", port, {port})  # held by another of our instances
    with pytest.raises(Conflict, match="no free port"):
        pick_port("127.0.0.1", port, port, {port})
