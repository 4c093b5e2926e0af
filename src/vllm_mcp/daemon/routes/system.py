"""Daemon-level endpoints: who am I, liveness, the OpenAPI document, shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from vllm_mcp import __version__
from vllm_mcp.api.schemas import DaemonInfo
from vllm_mcp.daemon.routing import Call, EndpointGroup, openapi

group = EndpointGroup("daemon")


@group.get("/v1/daemon", response=DaemonInfo)
async def daemon_info(call: Call[None]) -> DaemonInfo:
    """Version, pid and where the daemon keeps its files."""
    return call.services.info()


@group.get("/healthz", response=dict[str, str])
async def healthz(_: Call[None]) -> dict[str, str]:
    """Liveness: answers as soon as the control API is up."""
    return {"status": "ok"}


@group.get("/openapi.json", response=dict[str, Any])
async def openapi_doc(_: Call[None]) -> dict[str, Any]:
    """This API's OpenAPI 3.1 document."""
    from vllm_mcp.daemon.routes import GROUPS

    return openapi(GROUPS, __version__)


@group.post("/v1/daemon/shutdown", response=dict[str, str], status=202)
async def shutdown(_: Call[None]) -> dict[str, str]:
    """Stop the daemon gracefully (its instances are stopped first)."""
    asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
    return {"status": "stopping"}
