"""Serve the daemon: one per state dir, guaranteed by an flock held for its whole life.

serve → startup (lock, sockets, pid file) → uvicorn main loop (it owns SIGINT/SIGTERM and
restores the previous handlers) → shutdown (services stop, socket and pid file removed, lock
released). The unix socket is created with mode 0600 before it listens.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import uvicorn

from vllm_mcp.config import Settings
from vllm_mcp.daemon.app import create_app
from vllm_mcp.daemon.services import Services
from vllm_mcp.errors import Conflict

log = logging.getLogger("vllm_mcp.daemon")


@contextlib.contextmanager
def state_dir_lock(settings: Settings) -> Iterator[IO[str]]:
    """Hold the daemon lock of a state dir; a second daemon gets ``Conflict`` at once."""
    settings.paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fh = settings.lock_path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(settings.pid_path)
        fh.close()
        raise Conflict(
            f"a daemon is already running for {settings.paths.state_dir}" + (f" (pid {pid})" if pid else ""),
            hint="Use `vllm-mcp daemon status`, or `vllm-mcp daemon stop` first.",
            pid=pid,
        ) from None
    try:
        yield fh
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def bind_unix_socket(path: Path) -> socket.socket:
    """A listening-ready AF_UNIX socket whose file is 0600 from the moment it exists."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # stale: we hold the lock, so nobody is serving it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return sock


def _banner(services: Services) -> str:
    s = services.settings
    lines = [
        f"vllm-mcp daemon {services.info().version} (pid {os.getpid()})",
        f"  control API : unix:{s.socket_path} (mode 0600)",
        f"  TCP API     : {services.tcp} (bearer token required)" if services.tcp else "",
        f"  state db    : {s.db_path}",
        f"  logs        : {s.log_dir}",
        f"  vllm binary : {s.engine.vllm_bin} (instances on {s.engine.host}:"
        f"{s.engine.port_range_start}-{s.engine.port_range_end})",
        "  stop with Ctrl-C or `vllm-mcp daemon stop`",
    ]
    return "\n".join(line for line in lines if line)


class _StopRequest:
    """SIGINT/SIGTERM handler for the whole life of ``serve``.

    Before uvicorn runs, a signal only records the request (uvicorn then starts and stops at
    once); while it runs, uvicorn's own handlers are in charge; afterwards uvicorn restores this
    handler and re-raises the signal it caught, which must not kill us before the cleanup.
    """

    def __init__(self) -> None:
        self.requested = False
        self.server: uvicorn.Server | None = None

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True


def serve(settings: Settings) -> int:
    """Run the daemon in the foreground until SIGINT/SIGTERM. Returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with state_dir_lock(settings):
            return _serve_locked(settings, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve_locked(settings: Settings, stop: _StopRequest) -> int:
    services = Services.build(settings)
    sockets = [bind_unix_socket(settings.socket_path)]
    try:
        if settings.daemon.tcp_host and settings.daemon.tcp_port:
            sockets.append(socket.create_server((settings.daemon.tcp_host, settings.daemon.tcp_port)))
            services.tcp = f"{settings.daemon.tcp_host}:{settings.daemon.tcp_port}"
        settings.pid_path.write_text(f"{os.getpid()}\n")
        print(_banner(services), file=sys.stderr, flush=True)
        config = uvicorn.Config(
            create_app(services), log_level="warning", lifespan="on", timeout_graceful_shutdown=30
        )
        server = uvicorn.Server(config)
        stop.server = server
        server.should_exit = stop.requested  # a signal during set-up: start, then stop at once
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        with contextlib.suppress(FileNotFoundError):
            settings.socket_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            settings.pid_path.unlink()
    log.info("daemon stopped")
    return 0 if server.started or stop.requested else 1
