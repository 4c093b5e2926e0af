"""Wire schemas shared by the daemon and its clients (the control API)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Wire):
    """Every control-API error: what went wrong, what to do next, and the context."""

    code: str = Field(description="Stable machine-readable code, e.g. not_found.")
    message: str
    hint: str = ""
    context: dict[str, Any] = Field(default_factory=dict)


class DaemonInfo(_Wire):
    version: str
    pid: int
    started_at: float = Field(description="Unix time the daemon started.")
    state_dir: str
    socket_path: str
    db_path: str
    log_dir: str
    tcp: str | None = Field(None, description="host:port of the TCP control API, if enabled.")
