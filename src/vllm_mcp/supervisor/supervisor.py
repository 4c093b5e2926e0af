"""The supervisor: owns the ``vllm serve`` processes of this daemon (skeleton: API first).

Persistence goes through an ``InstanceRepository`` (``vllm_mcp.store.instances.InstanceStore``
implements it): supervisor and store are sibling layers, so the daemon builds the store and hands
it in instead of the supervisor importing ``store``.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from vllm_mcp.api.instances import InstanceEvent, InstanceView, LoadRequest, LogPage, PresetIn, PresetView
from vllm_mcp.config import Settings
from vllm_mcp.core.engine_spec import EngineSpec

#: Called after each successful start with the instance view and its log text (optimizer hook).
StartHook = Callable[[InstanceView, str], Awaitable[None]]


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        store: Any,
        *,
        spawner: Any = None,
        clock: Callable[[], float] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_started: StartHook | None = None,
    ) -> None:
        self.settings = settings

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def spec_from_request(self, request: LoadRequest) -> EngineSpec:
        raise NotImplementedError

    async def load(self, spec: EngineSpec, *, force: bool = False) -> InstanceView:
        raise NotImplementedError

    async def wait_ready(self, name: str, timeout_s: float) -> InstanceView:
        raise NotImplementedError

    async def unload(self, name: str) -> InstanceView:
        raise NotImplementedError

    async def sleep(self, name: str, level: int) -> InstanceView:
        raise NotImplementedError

    async def wake(self, name: str) -> InstanceView:
        raise NotImplementedError

    async def restart(self, name: str) -> InstanceView:
        raise NotImplementedError

    async def load_lora(self, name: str, lora_name: str, lora_path: str) -> InstanceView:
        raise NotImplementedError

    async def unload_lora(self, name: str, lora_name: str) -> InstanceView:
        raise NotImplementedError

    async def get(self, name: str) -> InstanceView:
        raise NotImplementedError

    async def list(self) -> list[InstanceView]:
        raise NotImplementedError

    async def logs(self, name: str, *, tail_lines: int = 200, before: int | None = None) -> LogPage:
        raise NotImplementedError

    def events(self, name: str | None = None) -> AsyncIterator[InstanceEvent]:
        raise NotImplementedError

    async def save_preset(self, preset: PresetIn) -> PresetView:
        raise NotImplementedError

    async def list_presets(self) -> builtins.list[PresetView]:
        raise NotImplementedError

    async def get_preset(self, name: str) -> PresetView:
        raise NotImplementedError

    async def delete_preset(self, name: str) -> PresetView:
        raise NotImplementedError
