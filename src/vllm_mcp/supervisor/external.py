"""The external instance: a vLLM at ``external.endpoint`` (``VLLM_API_ENDPOINT``) that this daemon
did not start. It is shown with its live state, may be put to sleep and woken when
``external.allow_sleep`` says so, and is never stopped, restarted or killed."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import httpx

from vllm_mcp.api.instances import ErrorInfo, InstanceView
from vllm_mcp.config import Settings
from vllm_mcp.core.lifecycle import State
from vllm_mcp.engine.client import VllmClient
from vllm_mcp.errors import Conflict, InvalidRequest, UpstreamError, UpstreamHTTPError

PROBE_TIMEOUT_S = 3.0
DEFAULT_NAME = "external"


class ExternalInstance:
    def __init__(
        self, settings: Settings, *, clock: Callable[[], float], transport: httpx.AsyncBaseTransport | None
    ) -> None:
        endpoint = settings.external.endpoint
        assert endpoint is not None
        key = settings.external.api_key
        self.url = str(endpoint).rstrip("/")
        self.allow_sleep = settings.external.allow_sleep
        self._clock = clock
        self._client = VllmClient(
            self.url, api_key=key.get_secret_value() if key else None, transport=transport
        )
        self.name = DEFAULT_NAME
        self._view = self._make(State.STOPPED, None, [], None)

    async def refresh(self) -> InstanceView:
        """Probe the server now: ready / sleeping, or failed with why it did not answer."""
        try:
            cards = await self._client.models(timeout=PROBE_TIMEOUT_S)
        except UpstreamError as exc:
            return self._set(State.FAILED, None, [], ErrorInfo(message=exc.message, code=exc.code))
        bases = [c for c in cards if c.parent is None]
        if bases:
            self.name = bases[0].id
        model = (bases[0].root or bases[0].id) if bases else None
        loras = sorted(c.id for c in cards if c.parent is not None)
        sleeping = False
        with contextlib.suppress(UpstreamError):  # needs dev mode on that server; unknown → awake
            sleeping = await self._client.is_sleeping(timeout=PROBE_TIMEOUT_S)
        return self._set(State.SLEEPING if sleeping else State.READY, model, loras, None)

    @property
    def view(self) -> InstanceView:
        return self._view

    async def sleep(self, level: int) -> InstanceView:
        self._check_allowed("sleep")
        await self._dev(self._client.sleep(level))
        return await self.refresh()

    async def wake(self) -> InstanceView:
        self._check_allowed("wake")
        await self._dev(self._client.wake_up())
        return await self.refresh()

    def refuse(self, action: str) -> Conflict:
        return Conflict(
            f"{self.name} is the external vLLM at {self.url}; the daemon never {action}s it",
            hint="Stop or restart that server where it runs; unset VLLM_API_ENDPOINT to hide it.",
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _check_allowed(self, action: str) -> None:
        if not self.allow_sleep:
            raise Conflict(
                f"{action} of the external vLLM at {self.url} is not allowed",
                hint="Set external.allow_sleep=true (VLLM_MCP__EXTERNAL__ALLOW_SLEEP) to allow it.",
            )

    async def _dev(self, call: Awaitable[None]) -> None:
        try:
            await call
        except UpstreamHTTPError as exc:
            if exc.status == 404:
                raise InvalidRequest(
                    f"the external vLLM at {self.url} has no sleep endpoints",
                    hint="Start it with VLLM_SERVER_DEV_MODE=1 to allow sleep and wake.",
                ) from exc
            raise

    def _set(self, state: State, model: str | None, loras: list[str], err: ErrorInfo | None) -> InstanceView:
        if state is not self._view.state or err != self._view.last_error:
            since = self._clock()
        else:
            since = self._view.state_since
        self._view = self._make(state, model, loras, err, since)
        return self._view

    def _make(
        self, state: State, model: str | None, loras: list[str], err: ErrorInfo | None, since: float = 0.0
    ) -> InstanceView:
        port = httpx.URL(self.url).port
        return InstanceView(
            name=self.name,
            model=model or self.url,
            state=state,
            port=port,
            base_url=self.url,
            external=True,
            loras=loras,
            state_since=since or self._clock(),
            last_error=err,
        )
