"""VllmClient's connection pool against a real socket server (no mocks).

The incident these guard against (FACTS.md): vLLM closes idle keep-alive connections after ~5 s;
a client that reuses a connection the server already dropped sees "Server disconnected" and
surfaces it as an error. The client must (1) expire idle connections early and (2) retry once
when a reused connection turns out dead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from vllm_mcp.engine import VllmClient

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(20)]

_OK = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n{"version":"0.32.0"}'


class KeepAliveServer:
    """A minimal HTTP/1.1 server. ``requests_per_connection`` answers, then it hangs up on the
    next request without answering, exactly like a server that dropped an idle keep-alive."""

    def __init__(self, requests_per_connection: int | None = None) -> None:
        self.limit = requests_per_connection
        self.connections = 0
        self.answered = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served = 0
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # GET requests: headers only
                if self.limit is not None and served >= self.limit:
                    break  # hang up mid-request: the client must not see this as a failure
                writer.write(_OK)
                await writer.drain()
                served += 1
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(server: KeepAliveServer) -> AsyncIterator[str]:
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.close()


async def test_a_reused_connection_the_server_dropped_is_retried_on_a_new_one() -> None:
    server = KeepAliveServer(requests_per_connection=1)
    async with serving(server) as url, VllmClient(url) as vllm:
        assert await vllm.version() == "0.32.0"
        assert await vllm.version() == "0.32.0"  # pooled connection is dead → one retry
    assert (server.connections, server.answered) == (2, 2)


async def test_back_to_back_calls_share_one_pooled_connection() -> None:
    server = KeepAliveServer()
    async with serving(server) as url, VllmClient(url) as vllm:
        for _ in range(3):
            await vllm.version()
    assert server.connections == 1


async def test_idle_connections_expire_before_the_server_drops_them() -> None:
    server = KeepAliveServer()
    async with serving(server) as url, VllmClient(url, keepalive_expiry=0.2) as vllm:
        await vllm.version()
        await asyncio.sleep(0.5)
        await vllm.version()
    assert server.connections == 2
