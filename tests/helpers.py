"""Small helpers shared by tests that run the real `vllm-mcp` CLI and daemon as subprocesses."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil


def cli_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """An environment whose vllm-mcp uses ``state_dir`` and no user config file."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VLLM_", "ALERT_THRESHOLD_"))
        and k
        not in (
            "STATE_DB_PATH",
            "ENCRYPTION_KEY",
            "ENABLE_COMPRESSION",
            "MONITOR_INTERVAL_MS",
            "METRICS_RETENTION_HOURS",
        )
    }
    env["XDG_CONFIG_HOME"] = str(state_dir.parent / "xdg-config")
    env["VLLM_MCP__PATHS__STATE_DIR"] = str(state_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vllm_mcp", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def group_alive(pgid: int) -> list[int]:
    """Pids still alive in a process group (zombies count as gone)."""
    alive = []
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
    return alive
