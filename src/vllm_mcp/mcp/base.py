"""How every vllm-mcp MCP server is built on the official SDK (``mcp`` 2.x ``MCPServer``).

A server module exposes ``SERVER_NAME``, ``INSTRUCTIONS`` and ``register(server, backend)``;
``create_server`` builds one server from one module, ``vllm-mcp mcp all`` registers every module
into one. Tools are declared with ``@tool(server, "kebab-name", …)`` and return ``Reply(model,
text)``: the model becomes ``structuredContent`` (its JSON schema is the tool's outputSchema) and
the text is what Crush shows the agent (it reads text only). Domain errors become ``ToolError``
whose text says what went wrong and what to do next; nothing else escapes as a traceback.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from vllm_mcp import __version__
from vllm_mcp.client import DaemonClient
from vllm_mcp.config import Settings, load_settings
from vllm_mcp.errors import VllmMcpError

TOOL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_QUALIFIED = 64  # Crush names tools mcp_<server>_<tool>; OpenAI-compatible APIs cap at 64
LONG_CALL_BUDGET_S = 45.0  # stay well under the ~60 s at which Claude Code cuts a tool call

M = TypeVar("M", bound=BaseModel)


@dataclass
class Reply(Generic[M]):
    """A tool result: structured data plus the readable text an agent sees."""

    data: M
    text: str


@dataclass
class Backend:
    """What a tool reaches the world through: the daemon, via one lazily opened client."""

    settings: Settings = field(default_factory=lambda: load_settings().settings)
    actor: str = "mcp"
    _client: DaemonClient | None = None

    @property
    def daemon(self) -> DaemonClient:
        if self._client is None:
            self._client = DaemonClient(self.settings, actor=self.actor)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def qualified_name(server: str, tool: str) -> str:
    return f"mcp_{server}_{tool}"


def error_text(exc: VllmMcpError) -> str:
    """The text an agent reads for a failed tool call: what, why, and the next step."""
    parts = [f"Error ({exc.code}): {exc.message}"]
    if exc.hint:
        parts.append(f"Next step: {exc.hint}")
    tail = exc.context.get("log_tail")
    if tail:
        parts.append("Log tail:\n" + str(tail)[-2000:])
    return "\n".join(parts)


class Tools:
    """Declares the tools of one server module: ``@tools.tool("load-model", …)``."""

    def __init__(self, server: MCPServer, server_name: str) -> None:
        self.server = server
        self.server_name = server_name
        self.names: list[str] = []

    def tool(
        self,
        name: str,
        *,
        title: str,
        read_only: bool,
        destructive: bool = False,
        idempotent: bool = False,
        open_world: bool = False,
    ) -> Callable[[ToolFn], ToolFn]:
        """Register an async tool; its docstring is the description, it returns ``Reply[Model]``."""
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r} is not kebab-case [a-z0-9-]")
        if len(qualified_name(self.server_name, name)) > MAX_QUALIFIED:
            raise ValueError(f"{qualified_name(self.server_name, name)} exceeds {MAX_QUALIFIED} chars")
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=destructive and not read_only,
            idempotent_hint=idempotent or read_only,
            open_world_hint=open_world,
        )

        def decorate(fn: ToolFn) -> ToolFn:
            sig = inspect.signature(fn, eval_str=True)
            model = _reply_model(fn, sig.return_annotation)
            returns = Annotated[CallToolResult, model]

            @functools.wraps(fn)
            async def run(*args: Any, **kwargs: Any) -> CallToolResult:
                try:
                    reply = await fn(*args, **kwargs)
                except VllmMcpError as exc:
                    raise ToolError(error_text(exc)) from exc
                return CallToolResult(
                    content=[TextContent(type="text", text=reply.text)],
                    structured_content=reply.data.model_dump(mode="json"),
                )

            # The SDK introspects the signature: give it evaluated annotations (our modules use
            # postponed annotations that would not resolve in this module's globals).
            run.__signature__ = sig.replace(return_annotation=returns)  # type: ignore[attr-defined]
            run.__annotations__ = {
                **{n: p.annotation for n, p in sig.parameters.items()},
                "return": returns,
            }
            self.server.add_tool(
                run, name=name, title=title, description=inspect.getdoc(fn), annotations=annotations
            )
            self.names.append(name)
            return fn

        return decorate


ToolFn = Callable[..., Awaitable[Reply[Any]]]


def _reply_model(fn: Callable[..., Any], ret: Any) -> type[BaseModel]:
    args = getattr(ret, "__args__", ())
    if not args or not (isinstance(args[0], type) and issubclass(args[0], BaseModel)):
        raise TypeError(f"tool {fn.__name__} must be annotated -> Reply[SomeModel]")
    model: type[BaseModel] = args[0]
    return model


def new_server(name: str, instructions: str) -> MCPServer:
    return MCPServer(name=name, version=__version__, instructions=instructions, log_level="WARNING")


class ServerModule:
    """The shape of a server module (checked at registration time)."""

    SERVER_NAME: str
    INSTRUCTIONS: str

    @staticmethod
    def register(server: MCPServer, backend: Backend, *, server_name: str) -> None:  # pragma: no cover
        raise NotImplementedError
