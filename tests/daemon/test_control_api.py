"""The control API in-process (ASGI) and its TCP listener's token rule (a real daemon)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from tests.helpers import cli_env, run_cli, wait_for
from tests.testbed import free_port
from vllm_mcp.daemon.app import _on_domain_error, _on_unexpected
from vllm_mcp.daemon.routing import Call, EndpointGroup, openapi, to_route
from vllm_mcp.errors import VllmMcpError


class Body(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(ge=1)


group = EndpointGroup("test")


@group.post("/v1/things", body=Body, response=Body, status=201)
async def make_thing(call: Call[Body]) -> Body:
    """Make a thing."""
    return call.body


@group.get("/v1/boom", response=Body)
async def boom(_: Call[None]) -> Body:
    """Fail unexpectedly."""
    raise RuntimeError("kaput")


def _client() -> httpx.AsyncClient:
    app = Starlette(
        routes=[to_route(ep, None) for ep in group.endpoints],  # type: ignore[arg-type]
        exception_handlers={VllmMcpError: _on_domain_error, Exception: _on_unexpected},
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )


@pytest.mark.anyio
async def test_typed_endpoint_validates_body_and_serialises_response() -> None:
    async with _client() as c:
        ok = await c.post("/v1/things", json={"name": "a", "size": 2})
        assert ok.status_code == 201 and ok.json() == {"name": "a", "size": 2}
        bad = await c.post("/v1/things", json={"name": "a", "size": 0})
        assert bad.status_code == 422
        assert bad.json()["code"] == "invalid_request"
        assert bad.json()["context"]["field"] == "size"
        not_json = await c.post("/v1/things", content=b"{nope")
        assert not_json.status_code == 422 and "not JSON" in not_json.json()["message"]


@pytest.mark.anyio
async def test_unexpected_errors_become_json_without_traceback() -> None:
    async with _client() as c:
        resp = await c.get("/v1/boom")
    assert resp.status_code == 500
    body = resp.json()
    assert body["code"] == "internal" and "kaput" in body["message"]
    assert "Traceback" not in resp.text


def test_openapi_describes_bodies_responses_and_errors() -> None:
    doc = openapi([group], "0")
    op = doc["paths"]["/v1/things"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["required"] == ["name", "size"]
    assert "201" in op["responses"]
    assert op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorBody")


@pytest.fixture
def tcp_daemon(state_dir: Path) -> Iterator[tuple[dict[str, str], int]]:
    port = free_port()
    env = cli_env(
        state_dir,
        VLLM_MCP__DAEMON__TCP_HOST="127.0.0.1",
        VLLM_MCP__DAEMON__TCP_PORT=str(port),
        VLLM_MCP__DAEMON__TOKEN="t0ken",
    )
    assert run_cli(["daemon", "start"], env).returncode == 0
    yield env, port
    run_cli(["daemon", "stop"], env)


def test_tcp_control_api_requires_the_token_but_the_socket_does_not(
    tcp_daemon: tuple[dict[str, str], int], state_dir: Path
) -> None:
    _, port = tcp_daemon
    url = f"http://127.0.0.1:{port}/v1/daemon"
    assert wait_for(lambda: httpx.get(url).status_code in (200, 401), 10)
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.get(url, headers={"Authorization": "Bearer t0ken"})
    assert ok.status_code == 200 and ok.json()["tcp"] == f"127.0.0.1:{port}"
    transport = httpx.HTTPTransport(uds=str(state_dir / "daemon.sock"))
    with httpx.Client(transport=transport, base_url="http://d") as unix:
        assert unix.get("/v1/daemon").status_code == 200


def test_tcp_without_token_is_a_config_error(state_dir: Path) -> None:
    env = cli_env(state_dir, VLLM_MCP__DAEMON__TCP_HOST="127.0.0.1", VLLM_MCP__DAEMON__TCP_PORT="1")
    result = run_cli(["daemon", "run"], env)
    assert result.returncode == 2
    assert "requires daemon.token" in result.stderr
