"""What an instance's owner task is given: settings, persistence, the event bus, and seams."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from vllm_mcp.api.instances import InstanceView
from vllm_mcp.config import Settings
from vllm_mcp.supervisor.events import EventBus
from vllm_mcp.supervisor.process import Spawner
from vllm_mcp.supervisor.repository import InstanceRepository

if TYPE_CHECKING:
    from vllm_mcp.supervisor.actor import InstanceActor

log = logging.getLogger(__name__)

#: Called after each successful start with the instance and the log text of that start.
StartHook = Callable[[InstanceView, str], Awaitable[None]]


async def no_start_hook(view: InstanceView, log_text: str) -> None:
    """The default start hook: nothing (the optimizer wires its calibration here)."""


@dataclass
class ActorDeps:
    settings: Settings
    repo: InstanceRepository
    bus: EventBus
    spawner: Spawner
    clock: Callable[[], float]
    transport: httpx.AsyncBaseTransport | None
    on_started: StartHook
    platform: str
    #: (instance, required port or None, preferred port or None) → a port free for it
    reserve_port: Callable[[str, int | None, int | None], int]
    retire: Callable[[InstanceActor], None]


async def run_start_hook(hook: StartHook, view: InstanceView, text: str) -> None:
    try:
        await hook(view, text)
    except Exception:
        log.exception("start hook failed for %s", view.name)
