"""Small real HTTP servers for discovery tests: a stand-in for the hub API and a plain (non-vLLM)
web server, each on a free loopback port in a background thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.testbed import free_port


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def hub_app(models: dict[str, dict[str, Any]], hits: list[str]) -> Starlette:
    """Answers ``GET /api/models/{org}/{name}`` as the hub does (``HfApi.model_info``)."""

    async def model_info(request: Request) -> Response:
        repo = f"{request.path_params['org']}/{request.path_params['name']}"
        hits.append(repo)
        if repo not in models:
            return JSONResponse(
                {"error": "Repository not found"}, status_code=404, headers={"X-Error-Code": "RepoNotFound"}
            )
        return JSONResponse({"id": repo, "_id": "x", "modelId": repo, **models[repo]})

    return Starlette(routes=[Route("/api/models/{org}/{name}", model_info)])


def plain_app() -> Starlette:
    """A web server that is not vLLM: a page at /, 404 elsewhere."""

    async def index(_: Request) -> Response:
        return HTMLResponse("<h1>hello</h1>")

    return Starlette(routes=[Route("/", index)])


def wait_http(url: str) -> None:
    httpx.get(url, timeout=5)
