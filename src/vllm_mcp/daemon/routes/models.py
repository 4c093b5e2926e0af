"""Model-manager endpoints: instances (load, wait, unload, sleep, wake, restart, LoRA, logs),
switching, and presets. Thin: validation is in the schemas and EngineSpec, work in the supervisor."""

from __future__ import annotations

from vllm_mcp.api.instances import (
    InstanceView,
    LoadRequest,
    LogPage,
    LoraRequest,
    PresetIn,
    PresetView,
    SleepRequest,
)
from vllm_mcp.api.manager import MAX_WAIT_S, LogsQuery, SwitchRequest, SwitchStatus, WaitQuery
from vllm_mcp.daemon.routing import Call, EndpointGroup

group = EndpointGroup("models")


@group.get("/v1/instances", response=list[InstanceView])
async def list_instances(call: Call[None]) -> list[InstanceView]:
    """Every instance: starting, ready, sleeping, failed, stopped, and external ones."""
    return await call.services.supervisor.list()


@group.post("/v1/instances", body=LoadRequest, response=InstanceView, status=202)
async def load_instance(call: Call[LoadRequest]) -> InstanceView:
    """Start a model, or return the instance already serving it; waits only if asked (≤ 50 s)."""
    sup = call.services.supervisor
    spec = sup.spec_from_request(call.body)
    if not call.body.force:  # the memory estimator's gate (DoesNotFit carries the recommendation)
        await call.services.optimizer.check_before_load(spec)
    view = await sup.load(spec, force=call.body.force)
    if call.body.wait:
        view = await sup.wait_ready(view.name, min(call.body.timeout_s, MAX_WAIT_S))
    return view


@group.get("/v1/instances/{name}", response=InstanceView)
async def get_instance(call: Call[None]) -> InstanceView:
    """One instance by served name."""
    return await call.services.supervisor.get(call.path["name"])


@group.post("/v1/instances/{name}/wait", query=WaitQuery, response=InstanceView)
async def wait_instance(call: Call[None]) -> InstanceView:
    """Wait (bounded) until the instance is ready or failed; returns its state either way."""
    query: WaitQuery = call.query_model(WaitQuery)
    return await call.services.supervisor.wait_ready(call.path["name"], query.timeout_s)


@group.delete("/v1/instances/{name}", response=InstanceView)
async def unload_instance(call: Call[None]) -> InstanceView:
    """Stop the instance's whole process group (never an external instance)."""
    return await call.services.supervisor.unload(call.path["name"])


@group.post("/v1/instances/{name}/sleep", body=SleepRequest, response=InstanceView)
async def sleep_instance(call: Call[SleepRequest]) -> InstanceView:
    """Put a ready instance to sleep (level 1 or 2)."""
    return await call.services.supervisor.sleep(call.path["name"], call.body.level)


@group.post("/v1/instances/{name}/wake", response=InstanceView)
async def wake_instance(call: Call[None]) -> InstanceView:
    """Wake a sleeping instance."""
    return await call.services.supervisor.wake(call.path["name"])


@group.post("/v1/instances/{name}/restart", response=InstanceView, status=202)
async def restart_instance(call: Call[None]) -> InstanceView:
    """Stop and start the instance with the same config."""
    return await call.services.supervisor.restart(call.path["name"])


@group.post("/v1/instances/{name}/loras", body=LoraRequest, response=InstanceView)
async def load_lora(call: Call[LoraRequest]) -> InstanceView:
    """Load a LoRA adapter into a running instance."""
    return await call.services.supervisor.load_lora(
        call.path["name"], call.body.lora_name, call.body.lora_path
    )


@group.delete("/v1/instances/{name}/loras/{lora}", response=InstanceView)
async def unload_lora(call: Call[None]) -> InstanceView:
    """Unload a LoRA adapter from a running instance."""
    return await call.services.supervisor.unload_lora(call.path["name"], call.path["lora"])


@group.get("/v1/instances/{name}/logs", query=LogsQuery, response=LogPage)
async def instance_logs(call: Call[None]) -> LogPage:
    """A page of the instance's log, newest last."""
    query: LogsQuery = call.query_model(LogsQuery)
    return await call.services.supervisor.logs(
        call.path["name"], tail_lines=query.tail_lines, before=query.before
    )


@group.post("/v1/switch", body=SwitchRequest, response=SwitchStatus)
async def switch(call: Call[SwitchRequest]) -> SwitchStatus:
    """Bring the target up, then retire the old instance; continues after the call returns."""
    return await call.services.switcher.switch(call.body)


@group.get("/v1/switch/{name}", response=SwitchStatus)
async def switch_status(call: Call[None]) -> SwitchStatus:
    """Where the last switch to this target stands."""
    return call.services.switcher.status(call.path["name"])


@group.get("/v1/presets", response=list[PresetView])
async def list_presets(call: Call[None]) -> list[PresetView]:
    """Saved load configurations."""
    return await call.services.supervisor.list_presets()


@group.post("/v1/presets", body=PresetIn, response=PresetView, status=201)
async def save_preset(call: Call[PresetIn]) -> PresetView:
    """Create or replace a preset."""
    return await call.services.supervisor.save_preset(call.body)


@group.delete("/v1/presets/{name}", response=PresetView)
async def delete_preset(call: Call[None]) -> PresetView:
    """Delete a preset (instances started from it keep running)."""
    return await call.services.supervisor.delete_preset(call.path["name"])
