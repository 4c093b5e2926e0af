"""The daemon as a real process: one per state dir, 0600 socket, clean stop, no leftovers."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import psutil
import pytest

from tests.helpers import cli_env, run_cli, wait_for
from vllm_mcp.client import DaemonClient
from vllm_mcp.config import load_settings


@pytest.fixture
def env(state_dir: Path) -> Iterator[dict[str, str]]:
    env = cli_env(state_dir)
    yield env
    run_cli(["daemon", "stop"], env)  # never leave a daemon behind


def _pid(state_dir: Path) -> int:
    return int((state_dir / "daemon.pid").read_text())


def test_start_status_stop_leaves_nothing_behind(env: dict[str, str], state_dir: Path) -> None:
    assert run_cli(["daemon", "status"], env).returncode == 3
    started = run_cli(["daemon", "start"], env)
    assert started.returncode == 0, started.stderr
    pid = _pid(state_dir)
    sock = state_dir / "daemon.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    status = run_cli(["daemon", "status", "--json"], env)
    info = json.loads(status.stdout)
    assert info["running"] is True and info["pid"] == pid
    assert info["socket_path"] == str(sock)
    stopped = run_cli(["daemon", "stop"], env)
    assert stopped.returncode == 0, stopped.stderr
    assert wait_for(lambda: not psutil.pid_exists(pid), 10)
    assert not sock.exists()
    assert not (state_dir / "daemon.pid").exists()


def test_a_second_daemon_on_the_same_state_dir_is_refused(env: dict[str, str], state_dir: Path) -> None:
    assert run_cli(["daemon", "start"], env).returncode == 0
    second = run_cli(["daemon", "run"], env, timeout=30)
    assert second.returncode == 2
    assert "already running" in second.stderr
    assert f"pid {_pid(state_dir)}" in second.stderr
    assert "Traceback" not in second.stderr


def test_racing_clients_start_exactly_one_daemon(env: dict[str, str], state_dir: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "vllm_mcp", "daemon", "start"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    pids = {line.split("pid ")[1].split(")")[0] for out, _ in outputs for line in out.splitlines()}
    assert len(pids) == 1
    daemons = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"]
        and p.info["cmdline"][-3:] == ["vllm_mcp", "daemon", "run"]
        and p.environ().get("VLLM_MCP__PATHS__STATE_DIR") == str(state_dir)
    ]
    assert len(daemons) == 1


def test_foreground_run_stops_cleanly_on_ctrl_c(env: dict[str, str], state_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vllm_mcp", "daemon", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for((state_dir / "daemon.sock").exists, 30)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "control API : unix:" in stderr and "state db" in stderr
    assert not (state_dir / "daemon.sock").exists()


@pytest.mark.anyio
async def test_daemon_client_autostarts_and_reports_errors_as_domain_errors(
    env: dict[str, str], state_dir: Path
) -> None:
    settings = load_settings(env=env).settings
    old = dict(os.environ)
    os.environ.update(env)  # the detached daemon inherits our environment
    try:
        with anyio.fail_after(60):
            async with DaemonClient(settings) as client:
                info = await client.info()
                assert info.state_dir == str(state_dir)
                from vllm_mcp.errors import NotFound

                with pytest.raises(NotFound, match="no route GET /v1/nope"):
                    await client.request("GET", "/v1/nope")
                doc = await client.request("GET", "/openapi.json")
                assert "/v1/daemon" in doc["paths"]
    finally:
        os.environ.clear()
        os.environ.update(old)
