"""Wire schemas of the model manager's orchestration calls (switch, wait, logs queries)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_mcp.api.instances import InstanceView, LoadRequest

MAX_WAIT_S = 50.0  # one call never blocks longer than this (MCP clients cut tool calls at ~60 s)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WaitQuery(_Wire):
    timeout_s: float = Field(30.0, gt=0, le=MAX_WAIT_S, description="Longest wait in seconds (≤ 50).")


class LogsQuery(_Wire):
    tail_lines: int = Field(100, ge=1, le=2000, description="How many lines to return.")
    before: int | None = Field(None, ge=0, description="Return lines before this line number (paging).")


class SwitchRequest(_Wire):
    """Bring ``to`` up (wake it if sleeping, else load it), then sleep or unload ``from_name``."""

    to: LoadRequest = Field(description="The model to switch to (served name, model, or preset).")
    from_name: str | None = Field(
        None, description="Instance to retire once the new one is ready; default: the only other one."
    )
    then: Literal["sleep", "unload", "keep"] = Field(
        "sleep", description="What to do with the old instance once the new one serves."
    )
    sleep_level: Literal[1, 2] = Field(1, description="Sleep level when then=sleep.")
    timeout_s: float = Field(45.0, gt=0, le=MAX_WAIT_S, description="How long this call waits.")


class SwitchStatus(_Wire):
    """Where a switch stands. A switch goes on in the daemon after the call returns."""

    phase: Literal["bringing_up", "retiring", "done", "failed"]
    target: InstanceView | None = None
    previous: InstanceView | None = None
    message: str = ""
