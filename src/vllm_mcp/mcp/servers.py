"""The registry of MCP server modules: short name → module (``vllm-mcp mcp <short name>``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from mcp.server.mcpserver import MCPServer

from vllm_mcp.mcp.base import Backend, new_server

#: short name → module path. Each module has SERVER_NAME, INSTRUCTIONS and register(server, backend).
SERVERS: dict[str, str] = {
    "model-manager": "vllm_mcp.mcp.model_manager",
    "resource-optimizer": "vllm_mcp.mcp.resource_optimizer",
    "auto-discovery": "vllm_mcp.mcp.auto_discovery",
}

BUNDLE_NAME = "vllm-mcp"
BUNDLE_INSTRUCTIONS = (
    "Every vllm-mcp tool in one server: load, switch, sleep and unload local vLLM models, find "
    "models on disk, and plan GPU memory. Long operations return at once; poll with the wait tools."
)


def module(short: str) -> ModuleType:
    if short not in SERVERS:
        raise KeyError(short)
    return importlib.import_module(SERVERS[short])


def create_server(short: str, backend: Backend | None = None) -> MCPServer:
    """One MCP server: a module by short name, or ``all`` for every tool in one server."""
    backend = backend or Backend()
    if short == "all":
        server = new_server(BUNDLE_NAME, BUNDLE_INSTRUCTIONS)
        for name in SERVERS:
            mod = module(name)
            mod.register(server, backend, server_name=BUNDLE_NAME)
        return server
    mod = module(short)
    server = new_server(mod.SERVER_NAME, mod.INSTRUCTIONS)
    mod.register(server, backend, server_name=mod.SERVER_NAME)
    return server
