"""Rules for changing the LoRA adapters of a running instance (pure checks on its record)."""

from __future__ import annotations

from vllm_mcp.core.instance import InstanceRecord
from vllm_mcp.core.lifecycle import State
from vllm_mcp.errors import Conflict, InvalidRequest, NotFound


def check_can_change(record: InstanceRecord) -> None:
    """Adapters change only on an instance started with LoRA support, while it is ready."""
    if not record.spec.enable_lora:
        raise InvalidRequest(
            f"{record.name} was started without LoRA support",
            hint="Load the model again with enable_lora=true (and max_lora_rank ≥ the adapter's).",
            field="enable_lora",
        )
    if record.state is not State.READY:
        raise Conflict(
            f"{record.name} is {record.state.value}; adapters change only while it is ready",
            hint="Wait until it is ready (wait-for-model), or wake it first.",
        )


def needs_load(record: InstanceRecord, lora_name: str, lora_path: str) -> bool:
    """False when that adapter is already loaded from that path (a repeat is a no-op)."""
    check_can_change(record)
    known = record.loras.get(lora_name)
    if known == lora_path:
        return False
    if known is not None:
        raise Conflict(
            f"adapter {lora_name} is already loaded on {record.name} from {known}",
            hint="Unload it first, or load the new one under another name.",
        )
    if lora_name == record.name:
        raise InvalidRequest(f"lora_name: {lora_name} is the instance's own served name", field="lora_name")
    return True


def check_unload(record: InstanceRecord, lora_name: str) -> None:
    if lora_name not in record.loras:
        known = ", ".join(sorted(record.loras)) or "none"
        raise NotFound(f"no adapter {lora_name} is loaded on {record.name}", hint=f"loaded adapters: {known}")
    check_can_change(record)
