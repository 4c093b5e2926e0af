"""The control API: a Starlette app over ``Services``; every route lives in ``routes_*`` modules.

Errors cross this boundary as ``{code, message, hint, context}`` JSON (``errors.to_wire``), with
the HTTP status of the error class; an unexpected exception becomes a 500 with the same shape
and is logged with its traceback here, never sent to the client.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from vllm_mcp.daemon.routing import to_route
from vllm_mcp.daemon.services import Services
from vllm_mcp.errors import InvalidRequest, NotFound, VllmMcpError

log = logging.getLogger(__name__)


def error_response(err: VllmMcpError) -> JSONResponse:
    return JSONResponse(err.to_wire(), status_code=err.http_status)


async def _on_domain_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, VllmMcpError)
    return error_response(exc)


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ValidationError)
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(body)"
    return error_response(
        InvalidRequest(f"invalid {field}: {first['msg']}", field=field, errors=len(exc.errors()))
    )


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unexpected error in the control API")
    err = VllmMcpError(
        f"internal error: {type(exc).__name__}: {exc}",
        hint="This is a bug in vllm-mcp; the daemon log has the traceback.",
    )
    return error_response(err)


async def _not_found(request: Request, _: Exception) -> Response:
    return error_response(
        NotFound(
            f"no route {request.method} {request.url.path}", hint="See GET /openapi.json for the control API."
        )
    )


class TokenAuth(BaseHTTPMiddleware):
    """Bearer-token check for the TCP listener (the unix socket relies on its 0600 mode)."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str) -> None:
        super().__init__(app)
        self._expected = f"Bearer {token}".encode()

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        server = request.scope.get("server")
        if server is not None and server[1] is None:
            return await call_next(request)  # uvicorn reports a unix socket as (path, None)
        got = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(got, self._expected):
            return JSONResponse(
                {
                    "code": "unauthorized",
                    "message": "missing or wrong bearer token",
                    "hint": "Send Authorization: Bearer <daemon.token>.",
                    "context": {},
                },
                status_code=401,
            )
        return await call_next(request)


def create_app(services: Services) -> Starlette:
    """The control API over ``services``; its lifespan starts and stops them."""
    from vllm_mcp.daemon.routes import GROUPS

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    routes: list[BaseRoute] = [to_route(ep, services) for g in GROUPS for ep in g.endpoints]
    token = services.settings.daemon.token
    middleware = [Middleware(TokenAuth, token=token.get_secret_value())] if token else []
    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            VllmMcpError: _on_domain_error,
            ValidationError: _on_validation_error,
            404: _not_found,
            405: _not_found,
            Exception: _on_unexpected,
        },
    )
    app.state.services = services
    return app
