"""`vllm-mcp mcp <server>` (serve over stdio or streamable HTTP) and `vllm-mcp tool …`
(call any tool of any of our servers from the shell, through a real in-process MCP client)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vllm_mcp.cli.common import add_json_flag, emit_json, err, out, run_async, settings_from
from vllm_mcp.errors import InvalidRequest

DEFAULT_HTTP_PORT = 8110  # the SDK's default 8000 is also vLLM's default port


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from vllm_mcp.mcp.servers import SERVERS

    names = [*SERVERS, "all"]
    p = sub.add_parser("mcp", help="run one of the MCP servers (stdio by default)")
    p.add_argument("server", choices=names, help="which server; `all` bundles every tool")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP port (default 8110)")
    p.set_defaults(handler=serve_cmd)

    t = sub.add_parser("tool", help="call an MCP tool from the shell: tool <server> <tool> --arg k=v")
    t.add_argument("server", choices=names)
    t.add_argument("tool", nargs="?", help="tool name (omit to list the server's tools)")
    t.add_argument(
        "--arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tool argument; VALUE is parsed as JSON when it can be (repeatable)",
    )
    add_json_flag(t)
    t.set_defaults(handler=tool_cmd)


def serve_cmd(args: argparse.Namespace) -> int:
    from vllm_mcp.mcp.base import Backend
    from vllm_mcp.mcp.servers import create_server

    backend = Backend(settings=settings_from(args).settings, actor=f"mcp:{args.server}")
    server = create_server(args.server, backend)
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")
    return 0


def parse_tool_args(pairs: list[str]) -> dict[str, Any]:
    """`--arg model-id=x --arg wait=true` → {"model_id": "x", "wait": True}."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidRequest(
                f"--arg {pair!r} is not KEY=VALUE",
                field="--arg",
                hint="Write it as --arg name=value, e.g. --arg model_id=tiny.",
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        parsed[key.replace("-", "_")] = value
    return parsed


def tool_cmd(args: argparse.Namespace) -> int:
    from mcp_types import TextContent

    from mcp import Client
    from vllm_mcp.mcp.base import Backend
    from vllm_mcp.mcp.servers import create_server

    backend = Backend(settings=settings_from(args).settings, actor="cli:tool")
    server = create_server(args.server, backend)
    arguments = parse_tool_args(args.arg)

    async def go() -> int:
        try:
            async with Client(server) as client:
                if not args.tool:
                    listing = await client.list_tools()
                    if args.json:
                        emit_json([t.model_dump(mode="json", exclude_none=True) for t in listing.tools])
                    else:
                        for t in listing.tools:
                            out.print(f"{t.name:24} {(t.description or '').splitlines()[0]}")
                    return 0
                result = await client.call_tool(args.tool, arguments)
        finally:
            await backend.aclose()
        texts = [c.text for c in result.content if isinstance(c, TextContent)]
        if args.json and not result.is_error:
            emit_json(result.structured_content)
        else:
            (err if result.is_error else out).print("\n".join(texts), markup=False)
        return 1 if result.is_error else 0

    return run_async(go)
