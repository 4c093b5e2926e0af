"""Typed control-API endpoints: one declaration gives the route, validation and the OpenAPI entry.

    group = EndpointGroup("models")

    @group.post("/v1/models/load", body=LoadRequest, response=InstanceView, summary="…")
    async def load(call: Call[LoadRequest]) -> InstanceView: ...

Bodies and query strings are validated with the declared pydantic models (a bad one is an
``InvalidRequest`` naming the field); the return value is serialised with ``model_dump``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vllm_mcp.errors import InvalidRequest

if TYPE_CHECKING:
    from vllm_mcp.daemon.services import Services

B = TypeVar("B", bound=BaseModel | None)


@dataclass(frozen=True)
class Call(Generic[B]):
    services: Services
    request: Request
    body: B
    path: dict[str, str]
    query: dict[str, str]

    def query_model(self, model: type[BaseModel]) -> Any:
        return _validate(model, self.query, "query")


Handler = Callable[[Call[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    response: Any = None  # a pydantic model, list[Model], or None for 204
    query: type[BaseModel] | None = None
    status: int = 200


@dataclass
class EndpointGroup:
    tag: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def _add(self, method: str, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            summary = kw.pop("summary", None) or (fn.__doc__ or fn.__name__).strip().splitlines()[0]
            self.endpoints.append(Endpoint(method, path, fn, summary, **kw))
            return fn

        return deco

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path, **kw)


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or where
        raise InvalidRequest(f"invalid {loc}: {first['msg']}", field=loc) from None


def _dump(value: Any, response: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if response is not None:
        return TypeAdapter(response).dump_python(value, mode="json")
    return value


def to_route(endpoint: Endpoint, services: Services) -> Route:
    async def run(request: Request) -> Response:
        body: Any = None
        if endpoint.body is not None:
            raw = await request.body()
            try:
                data = json.loads(raw) if raw else {}
            except ValueError as exc:
                raise InvalidRequest(f"request body is not JSON: {exc}", field="(body)") from None
            body = _validate(endpoint.body, data, "body")
        query = dict(request.query_params)
        if endpoint.query is not None:
            _validate(endpoint.query, query, "query")
        call: Call[Any] = Call(services, request, body, dict(request.path_params), query)
        result = await endpoint.handler(call)
        if result is None and endpoint.response is None:
            return Response(status_code=204)
        return JSONResponse(_dump(result, endpoint.response), status_code=endpoint.status)

    return Route(endpoint.path, run, methods=[endpoint.method])


def openapi(groups: Sequence[EndpointGroup], version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every declared endpoint."""
    paths: dict[str, dict[str, Any]] = {}
    for group in groups:
        for ep in group.endpoints:
            op: dict[str, Any] = {
                "summary": ep.summary,
                "tags": [group.tag],
                "operationId": ep.handler.__name__,
            }
            if ep.body is not None:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": ep.body.model_json_schema()}},
                }
            if ep.query is not None:
                props = ep.query.model_json_schema().get("properties", {})
                op["parameters"] = [{"name": n, "in": "query", "schema": s} for n, s in props.items()]
            params = [seg[1:-1] for seg in ep.path.split("/") if seg.startswith("{")]
            op.setdefault("parameters", []).extend(
                {"name": p.split(":")[0], "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            )
            ok: dict[str, Any] = {"description": "OK"}
            if ep.response is not None:
                ok["content"] = {"application/json": {"schema": TypeAdapter(ep.response).json_schema()}}
            op["responses"] = {
                str(ep.status if ep.response is not None else 204): ok,
                "default": {
                    "description": "Error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                },
            }
            path = "/".join(s.split(":")[0] + ("}" if ":" in s else "") for s in ep.path.split("/"))
            paths.setdefault(path, {})[ep.method.lower()] = op
    from vllm_mcp.api.schemas import ErrorBody

    return {
        "openapi": "3.1.0",
        "info": {"title": "vllm-mcp control API", "version": version},
        "paths": paths,
        "components": {"schemas": {"ErrorBody": ErrorBody.model_json_schema()}},
    }
