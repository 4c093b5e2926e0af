"""``DaemonClient``: how the CLI and the MCP servers reach the daemon (HTTP over its socket).

If nothing answers, ``ensure_running`` starts the daemon detached (its own session, output to
``<state dir>/logs/daemon.log``) and waits for it. Two clients racing to start it take a spawn
lock first, and the daemon itself holds the state-dir lock, so there is at most one daemon.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from vllm_mcp.api.schemas import DaemonInfo
from vllm_mcp.config import Settings
from vllm_mcp.errors import DaemonUnavailable, VllmMcpError, error_from_wire

ACTOR_HEADER = "X-Vllm-Mcp-Actor"
_CONNECT_ERRORS = (httpx.ConnectError, httpx.RemoteProtocolError, FileNotFoundError, ConnectionRefusedError)


class DaemonClient:
    def __init__(
        self,
        settings: Settings,
        *,
        actor: str = "cli",
        autostart: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.autostart = autostart
        self._http = httpx.AsyncClient(
            transport=transport or httpx.AsyncHTTPTransport(uds=str(settings.socket_path)),
            base_url="http://vllm-mcp",
            timeout=timeout,
            headers={ACTOR_HEADER: actor},
        )
        self._checked = False

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call the control API; a daemon error comes back as the same ``VllmMcpError`` type."""
        if not self._checked and self.autostart:
            await self.ensure_running()
        try:
            resp = await self._http.request(
                method, path, json=json, params=params, timeout=timeout or self._http.timeout
            )
        except _CONNECT_ERRORS as exc:
            raise DaemonUnavailable(
                f"the daemon at {self.settings.socket_path} does not answer: {exc}",
                socket=str(self.settings.socket_path),
            ) from exc
        except httpx.TimeoutException as exc:
            raise DaemonUnavailable(
                f"the daemon did not answer {method} {path} in time",
                hint="It may be busy; retry, or read its log.",
            ) from exc
        if resp.status_code == 204:
            return None
        try:
            body = resp.json()
        except ValueError:
            raise DaemonUnavailable(f"the daemon sent a non-JSON answer ({resp.status_code})") from None
        if resp.status_code >= 400:
            raise error_from_wire(body if isinstance(body, dict) else {"message": str(body)})
        return body

    async def is_up(self) -> bool:
        try:
            resp = await self._http.get("/healthz", timeout=2.0)
        except (*_CONNECT_ERRORS, httpx.TimeoutException):
            return False
        return resp.status_code == 200

    async def info(self) -> DaemonInfo:
        return DaemonInfo.model_validate(await self.request("GET", "/v1/daemon"))

    async def ensure_running(self) -> None:
        """Make sure a daemon answers, starting one detached if needed (at most one)."""
        if await self.is_up():
            self._checked = True
            return
        if not self.autostart:
            raise DaemonUnavailable(f"no daemon answers at {self.settings.socket_path}")
        s = self.settings
        s.log_dir.mkdir(parents=True, exist_ok=True)
        spawn_lock = s.paths.state_dir / "daemon.spawn.lock"
        with spawn_lock.open("a+") as lock:
            await anyio.to_thread.run_sync(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                if not await self.is_up():
                    proc = spawn_detached_daemon(s)
                    await self._wait_up(proc, s.daemon.start_timeout_s)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        self._checked = True

    async def _wait_up(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.is_up():
                return
            if proc.poll() is not None and not await self.is_up():
                raise DaemonUnavailable(
                    f"the daemon exited at start (exit code {proc.returncode})",
                    log_tail=log_tail(self.settings.log_dir / "daemon.log"),
                )
            await anyio.sleep(0.1)
        raise DaemonUnavailable(
            f"the daemon did not answer within {timeout:.0f} s",
            log_tail=log_tail(self.settings.log_dir / "daemon.log"),
        )


def spawn_detached_daemon(settings: Settings) -> subprocess.Popen[bytes]:
    """Start ``vllm-mcp daemon run`` in its own session, output appended to daemon.log."""
    log_path = settings.log_dir / "daemon.log"
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "vllm_mcp", "daemon", "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=os.environ.copy(),
            close_fds=True,
        )


def log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


__all__ = ["DaemonClient", "VllmMcpError", "log_tail", "spawn_detached_daemon"]
