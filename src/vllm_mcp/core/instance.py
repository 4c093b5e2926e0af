"""The persisted record of one supervised instance, and one lifecycle transition. Pure values.

The supervisor's owner task holds the current ``InstanceRecord`` and replaces it (never mutates
it) on every change; the store serialises it. Shared by ``supervisor`` and ``store``, which are
sibling layers and may not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import Event, State


@dataclass(frozen=True)
class FailureInfo:
    """Why an instance failed: message, process exit code (if it exited) and its log tail.

    ``code`` is the error code of the ``EngineError`` it maps back to (``engine_start_failed``,
    ``engine_start_timeout``, ``engine_crashed``, ``engine_error``)."""

    message: str
    code: str = "engine_error"
    exit_code: int | None = None
    log_tail: str = ""


@dataclass(frozen=True)
class InstanceRecord:
    name: str  # the served name; unique among live instances
    spec: EngineSpec
    state: State
    state_since: float
    created_at: float
    port: int | None = None
    pid: int | None = None  # leader of the process group (pgid == pid: start_new_session)
    argv: tuple[str, ...] = ()  # exactly what was launched; adoption matches the cmdline to it
    log_path: str | None = None
    log_offset: int = 0  # byte offset where the current start's output begins
    loras: dict[str, str] = field(default_factory=dict)  # adapter name → path
    sleep_level: int | None = None  # set while sleeping: a level-2 wake reloads weights
    started_at: float | None = None
    ready_at: float | None = None
    last_error: FailureInfo | None = None
    restarts: int = 0


@dataclass(frozen=True)
class Transition:
    name: str
    at: float
    from_state: State | None
    to_state: State
    event: Event
    detail: str = ""
