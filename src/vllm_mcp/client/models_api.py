"""Typed calls to the model-manager endpoints, shared by the CLI verbs and the MCP tools."""

from __future__ import annotations

import builtins
from typing import Any

from pydantic import TypeAdapter

from vllm_mcp.api.instances import (
    InstanceView,
    LoadRequest,
    LogPage,
    LoraRequest,
    PresetIn,
    PresetView,
)
from vllm_mcp.api.manager import SwitchRequest, SwitchStatus
from vllm_mcp.client.daemon_client import DaemonClient

_instances = TypeAdapter(list[InstanceView])
_presets = TypeAdapter(list[PresetView])


class ModelsApi:
    def __init__(self, daemon: DaemonClient) -> None:
        self._d = daemon

    async def _view(self, method: str, path: str, **kw: Any) -> InstanceView:
        return InstanceView.model_validate(await self._d.request(method, path, **kw))

    async def list(self) -> list[InstanceView]:
        return _instances.validate_python(await self._d.request("GET", "/v1/instances"))

    async def get(self, name: str) -> InstanceView:
        return await self._view("GET", f"/v1/instances/{name}")

    async def load(self, request: LoadRequest) -> InstanceView:
        wait = request.timeout_s + 10 if request.wait else 60
        return await self._view(
            "POST", "/v1/instances", json=request.model_dump(exclude_none=True), timeout=wait
        )

    async def wait(self, name: str, timeout_s: float) -> InstanceView:
        return await self._view(
            "POST", f"/v1/instances/{name}/wait", params={"timeout_s": timeout_s}, timeout=timeout_s + 10
        )

    async def unload(self, name: str) -> InstanceView:
        return await self._view("DELETE", f"/v1/instances/{name}", timeout=120)

    async def sleep(self, name: str, level: int) -> InstanceView:
        return await self._view("POST", f"/v1/instances/{name}/sleep", json={"level": level}, timeout=120)

    async def wake(self, name: str) -> InstanceView:
        return await self._view("POST", f"/v1/instances/{name}/wake", timeout=120)

    async def restart(self, name: str) -> InstanceView:
        return await self._view("POST", f"/v1/instances/{name}/restart", timeout=120)

    async def load_lora(self, name: str, lora_name: str, lora_path: str) -> InstanceView:
        body = LoraRequest(lora_name=lora_name, lora_path=lora_path).model_dump()
        return await self._view("POST", f"/v1/instances/{name}/loras", json=body)

    async def unload_lora(self, name: str, lora_name: str) -> InstanceView:
        return await self._view("DELETE", f"/v1/instances/{name}/loras/{lora_name}")

    async def logs(self, name: str, tail_lines: int, before: int | None = None) -> LogPage:
        params: dict[str, Any] = {"tail_lines": tail_lines}
        if before is not None:
            params["before"] = before
        return LogPage.model_validate(
            await self._d.request("GET", f"/v1/instances/{name}/logs", params=params)
        )

    async def switch(self, request: SwitchRequest) -> SwitchStatus:
        return SwitchStatus.model_validate(
            await self._d.request(
                "POST",
                "/v1/switch",
                json=request.model_dump(exclude_none=True),
                timeout=request.timeout_s + 10,
            )
        )

    async def list_presets(self) -> builtins.list[PresetView]:
        return _presets.validate_python(await self._d.request("GET", "/v1/presets"))

    async def save_preset(self, preset: PresetIn) -> PresetView:
        return PresetView.model_validate(
            await self._d.request("POST", "/v1/presets", json=preset.model_dump(exclude_none=True))
        )

    async def delete_preset(self, name: str) -> PresetView:
        return PresetView.model_validate(await self._d.request("DELETE", f"/v1/presets/{name}"))
