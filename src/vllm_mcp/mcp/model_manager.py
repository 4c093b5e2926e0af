"""MCP server `vllm-model-manager`: load, switch, sleep, wake and unload local vLLM models.

Every tool is a thin call to the daemon's control API. A load never blocks a call for more than
~45 s: it returns the instance at once (or after a bounded wait), reports progress while the
engine starts, and `wait-for-model` continues in bounded slices.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from vllm_mcp.api.instances import InstanceView, LoadRequest, LogPage, PresetIn, PresetView
from vllm_mcp.api.manager import MAX_WAIT_S, SwitchRequest, SwitchStatus
from vllm_mcp.client.models_api import ModelsApi
from vllm_mcp.core.lifecycle import SETTLED_STATES, State
from vllm_mcp.errors import EngineStartFailed, NotFound, VllmMcpError
from vllm_mcp.mcp import render
from vllm_mcp.mcp.base import LONG_CALL_BUDGET_S, Backend, Reply, Tools

SERVER_NAME = "vllm-model-manager"
INSTRUCTIONS = (
    "Runs local vLLM engines for you. list-models shows what is loaded, sleeping, saved as a "
    "preset or found on disk. load-model starts a model (returns quickly; then wait-for-model). "
    "switch-model brings another model up and only then sleeps or unloads the current one. "
    "Sleeping models wake in seconds; cold loads take much longer."
)
POLL_SLICE_S = 2.0


def _desc(field: str) -> str:
    return LoadRequest.model_fields[field].description or field


Name = Annotated[str, Field(description="Served name of the instance (see list-models).", min_length=1)]
Timeout = Annotated[float, Field(description="Longest wait in seconds (≤ 45).", gt=0, le=45)]


class InstanceList(BaseModel):
    instances: list[InstanceView]
    presets: list[PresetView]
    discovered: list[dict[str, Any]] = Field(
        default_factory=list, description="Models found on disk (auto-discovery)."
    )
    discovery_note: str = ""


class PresetList(BaseModel):
    presets: list[PresetView]


async def _wait_with_progress(
    api: ModelsApi, view: InstanceView, budget: float, ctx: Context | None
) -> InstanceView:
    """Poll the daemon in short slices until the instance settles or the budget is spent."""
    deadline = time.monotonic() + min(budget, LONG_CALL_BUDGET_S)
    step = 0
    while view.state not in SETTLED_STATES:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        view = await api.wait(view.name, min(POLL_SLICE_S, left))
        step += 1
        if ctx is not None:
            await ctx.report_progress(step, None, f"{view.name}: {view.state.value}")
    if view.state is State.FAILED:
        raise _failure(view)
    return view


def _failure(view: InstanceView) -> EngineStartFailed:
    err = view.last_error
    message = f"{view.name} failed" + (f": {err.message}" if err else "")
    return EngineStartFailed(
        message,
        name=view.name,
        exit_code=err.exit_code if err else None,
        log_tail=err.log_tail if err else "",
        hint="Read the log tail, fix the engine flags or the model, then load-model "
        "again (get-model-logs pages back through the whole log).",
    )


def register(server: MCPServer, backend: Backend, *, server_name: str = SERVER_NAME) -> None:  # noqa: PLR0915
    tools = Tools(server, server_name)

    def api() -> ModelsApi:
        return ModelsApi(backend.daemon)

    @tools.tool("list-models", title="List models", read_only=True)
    async def list_models() -> Reply[InstanceList]:
        """List running, sleeping and failed vLLM instances, saved presets, and models found on disk."""
        a = api()
        instances, presets = await a.list(), await a.list_presets()
        discovered: list[dict[str, Any]] = []
        note = ""
        try:
            found = await backend.daemon.request("GET", "/v1/discovery/models", params={"limit": 50})
            discovered = list(found.get("models", [])) if isinstance(found, dict) else []
        except NotFound:
            note = "auto-discovery is not available in this daemon"
        except VllmMcpError as exc:
            note = f"auto-discovery failed: {exc.message}"
        text = [render.instances(instances), "", "Presets:", render.presets(presets)]
        if discovered:
            text += ["", f"On disk ({len(discovered)}):"]
            text += [f"  {m.get('name') or m.get('id')}: {m.get('path', '')}" for m in discovered]
        elif note:
            text += ["", f"On disk: {note}"]
        return Reply(
            InstanceList(instances=instances, presets=presets, discovered=discovered, discovery_note=note),
            "\n".join(text),
        )

    @tools.tool("get-model-status", title="Model status", read_only=True)
    async def get_model_status(name: Name) -> Reply[InstanceView]:
        """Show one instance: state, address, engine config, LoRA adapters, last error with log tail."""
        view = await api().get(name)
        return Reply(view, render.instance(view))

    @tools.tool("load-model", title="Load a model", read_only=False, idempotent=True, open_world=True)
    async def load_model(
        ctx: Context,
        model: Annotated[str | None, Field(description=_desc("model"))] = None,
        preset: Annotated[str | None, Field(description=_desc("preset"))] = None,
        served_name: Annotated[str | None, Field(description=_desc("served_name"))] = None,
        tensor_parallel_size: Annotated[int | None, Field(description=_desc("tensor_parallel_size"))] = None,
        pipeline_parallel_size: Annotated[
            int | None, Field(description=_desc("pipeline_parallel_size"))
        ] = None,
        gpu_memory_utilization: Annotated[
            float | None, Field(description=_desc("gpu_memory_utilization"))
        ] = None,
        kv_cache_memory_bytes: Annotated[
            int | None, Field(description=_desc("kv_cache_memory_bytes"))
        ] = None,
        max_model_len: Annotated[int | None, Field(description=_desc("max_model_len"))] = None,
        dtype: Annotated[str | None, Field(description=_desc("dtype"))] = None,
        quantization: Annotated[str | None, Field(description=_desc("quantization"))] = None,
        kv_cache_dtype: Annotated[str | None, Field(description=_desc("kv_cache_dtype"))] = None,
        enforce_eager: Annotated[bool | None, Field(description=_desc("enforce_eager"))] = None,
        enable_lora: Annotated[bool | None, Field(description=_desc("enable_lora"))] = None,
        max_loras: Annotated[int | None, Field(description=_desc("max_loras"))] = None,
        max_lora_rank: Annotated[int | None, Field(description=_desc("max_lora_rank"))] = None,
        gpus: Annotated[list[int] | None, Field(description=_desc("gpus"))] = None,
        port: Annotated[int | None, Field(description=_desc("port"))] = None,
        extra_flags: Annotated[list[str] | None, Field(description=_desc("extra_flags"))] = None,
        force: Annotated[bool, Field(description=_desc("force"))] = False,
        wait: Annotated[bool, Field(description="Wait until ready, at most timeout_s (≤ 45 s).")] = True,
        timeout_s: Timeout = 40.0,
    ) -> Reply[InstanceView]:
        """Start a vLLM engine for a model (HF id or local path) or a preset; returns the instance.

        Loading the same model again returns the existing instance. The call waits at most
        timeout_s; a bigger model keeps starting in the background — then call wait-for-model.
        """
        fields = {k: v for k, v in locals().items() if k in LoadRequest.model_fields and v is not None}
        fields.update(wait=False)
        request = LoadRequest.model_validate(fields)
        a = api()
        view = await a.load(request)
        await ctx.report_progress(0, None, f"{view.name}: {view.state.value}")
        if wait:
            view = await _wait_with_progress(a, view, timeout_s, ctx)
        return Reply(view, render.instance(view))

    @tools.tool("wait-for-model", title="Wait for a model", read_only=True)
    async def wait_for_model(ctx: Context, name: Name, timeout_s: Timeout = 40.0) -> Reply[InstanceView]:
        """Wait (≤ 45 s per call) until a starting or waking instance is ready or has failed."""
        a = api()
        view = await _wait_with_progress(a, await a.get(name), timeout_s, ctx)
        return Reply(view, render.instance(view))

    @tools.tool("unload-model", title="Unload a model", read_only=False, destructive=True, idempotent=True)
    async def unload_model(name: Name) -> Reply[InstanceView]:
        """Stop an instance and its whole process group, freeing its memory."""
        view = await api().unload(name)
        return Reply(view, render.instance(view))

    @tools.tool("sleep-model", title="Sleep a model", read_only=False, idempotent=True)
    async def sleep_model(
        name: Name,
        level: Annotated[
            Literal[1, 2], Field(description="1: offload weights (fast wake); 2: discard them.")
        ] = 1,
    ) -> Reply[InstanceView]:
        """Put a ready instance to sleep: it keeps its process and wakes in seconds."""
        view = await api().sleep(name, level)
        return Reply(view, render.instance(view))

    @tools.tool("wake-model", title="Wake a model", read_only=False, idempotent=True)
    async def wake_model(name: Name) -> Reply[InstanceView]:
        """Wake a sleeping instance so it serves requests again."""
        view = await api().wake(name)
        return Reply(view, render.instance(view))

    @tools.tool("switch-model", title="Switch models", read_only=False, open_world=True)
    async def switch_model(
        to_model: Annotated[str | None, Field(description="Model to switch to: HF id or local path.")] = None,
        to_preset: Annotated[str | None, Field(description="Or a preset to switch to.")] = None,
        to_served_name: Annotated[str | None, Field(description="Served name of the target.")] = None,
        from_name: Annotated[
            str | None, Field(description="Instance to retire (default: the only other one).")
        ] = None,
        then: Annotated[
            Literal["sleep", "unload", "keep"], Field(description="What to do with the old one.")
        ] = "sleep",
        sleep_level: Annotated[Literal[1, 2], Field(description="Sleep level when then=sleep.")] = 1,
        timeout_s: Timeout = 40.0,
    ) -> Reply[SwitchStatus]:
        """Bring another model up (wake it if sleeping, else load it), then sleep or unload the old one.

        The old model keeps serving until the new one is ready. The switch continues in the
        daemon if this call returns first; check with wait-for-model on the target.
        """
        target = LoadRequest(model=to_model, preset=to_preset, served_name=to_served_name)
        request = SwitchRequest(
            to=target,
            from_name=from_name,
            then=then,
            sleep_level=sleep_level,
            timeout_s=min(timeout_s, MAX_WAIT_S),
        )
        status = await api().switch(request)
        return Reply(status, render.switch(status))

    @tools.tool("restart-model", title="Restart a model", read_only=False, destructive=True)
    async def restart_model(name: Name) -> Reply[InstanceView]:
        """Stop and start an instance with the same configuration (e.g. after a crash)."""
        view = await api().restart(name)
        return Reply(view, render.instance(view))

    @tools.tool("get-model-logs", title="Model logs", read_only=True)
    async def get_model_logs(
        name: Name,
        tail_lines: Annotated[int, Field(description="Lines to return.", ge=1, le=500)] = 80,
        before: Annotated[
            int | None, Field(description="Page back: the next_offset of the previous page.", ge=0)
        ] = None,
    ) -> Reply[LogPage]:
        """Read the end of an instance's vLLM log, paging back with `before`."""
        page = await api().logs(name, tail_lines, before)
        return Reply(page, render.logs(page))

    @tools.tool("load-lora", title="Load a LoRA adapter", read_only=False, idempotent=True)
    async def load_lora(
        name: Name,
        lora_name: Annotated[
            str, Field(description="Name to call the adapter by (as `model`).", min_length=1)
        ],
        lora_path: Annotated[str, Field(description="Local folder of a PEFT-format adapter.", min_length=1)],
    ) -> Reply[InstanceView]:
        """Load a LoRA adapter into a running instance (needs enable_lora at load time)."""
        view = await api().load_lora(name, lora_name, lora_path)
        return Reply(view, render.instance(view))

    @tools.tool(
        "unload-lora", title="Unload a LoRA adapter", read_only=False, destructive=True, idempotent=True
    )
    async def unload_lora(
        name: Name,
        lora_name: Annotated[str, Field(description="Adapter to unload.", min_length=1)],
    ) -> Reply[InstanceView]:
        """Unload a LoRA adapter from a running instance."""
        view = await api().unload_lora(name, lora_name)
        return Reply(view, render.instance(view))

    @tools.tool("save-preset", title="Save a preset", read_only=False, idempotent=True)
    async def save_preset(
        name: Annotated[str, Field(description="Preset name (letters, digits, . _ -).", min_length=1)],
        model: Annotated[str, Field(description=_desc("model"), min_length=1)],
        description: Annotated[str, Field(description="What the preset is for.")] = "",
        served_name: Annotated[str | None, Field(description=_desc("served_name"))] = None,
        tensor_parallel_size: Annotated[int | None, Field(description=_desc("tensor_parallel_size"))] = None,
        gpu_memory_utilization: Annotated[
            float | None, Field(description=_desc("gpu_memory_utilization"))
        ] = None,
        kv_cache_memory_bytes: Annotated[
            int | None, Field(description=_desc("kv_cache_memory_bytes"))
        ] = None,
        max_model_len: Annotated[int | None, Field(description=_desc("max_model_len"))] = None,
        dtype: Annotated[str | None, Field(description=_desc("dtype"))] = None,
        quantization: Annotated[str | None, Field(description=_desc("quantization"))] = None,
        enforce_eager: Annotated[bool | None, Field(description=_desc("enforce_eager"))] = None,
        enable_lora: Annotated[bool | None, Field(description=_desc("enable_lora"))] = None,
        extra_flags: Annotated[list[str] | None, Field(description=_desc("extra_flags"))] = None,
    ) -> Reply[PresetView]:
        """Save (or replace) a named load configuration for load-model and switch-model."""
        fields = {k: v for k, v in locals().items() if k in PresetIn.model_fields and v is not None}
        preset = await api().save_preset(PresetIn.model_validate(fields))
        return Reply(preset, f"saved preset {preset.name}: {preset.model}")

    @tools.tool("list-presets", title="List presets", read_only=True)
    async def list_presets() -> Reply[PresetList]:
        """List saved presets."""
        presets = await api().list_presets()
        return Reply(PresetList(presets=presets), render.presets(presets))

    @tools.tool("delete-preset", title="Delete a preset", read_only=False, destructive=True, idempotent=True)
    async def delete_preset(
        name: Annotated[str, Field(description="Preset to delete.", min_length=1)],
    ) -> Reply[PresetView]:
        """Delete a preset; instances started from it keep running."""
        preset = await api().delete_preset(name)
        return Reply(preset, f"deleted preset {preset.name}")

    @server.resource(
        "vllm://models",
        name="models",
        mime_type="application/json",
        description="Every vLLM instance the daemon knows.",
    )
    async def models_resource() -> str:
        views = await api().list()
        return "[" + ",".join(v.model_dump_json() for v in views) + "]"

    @server.resource(
        "vllm://models/{name}",
        name="model",
        mime_type="application/json",
        description="One vLLM instance by served name.",
    )
    async def model_resource(name: str) -> str:
        return (await api().get(name)).model_dump_json()
