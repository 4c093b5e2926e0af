"""Typed calls to the auto-discovery endpoints, shared by `vllm-mcp discover` and the MCP tools."""

from __future__ import annotations

from vllm_mcp.api.discovery import (
    Assessment,
    AssessRequest,
    DiscoverySummary,
    EndpointQuery,
    EndpointScan,
    ModelDetail,
    ModelPage,
    ModelQuery,
    RefreshRequest,
    RefreshResult,
)
from vllm_mcp.client.daemon_client import DaemonClient

#: Probing ranges and asking vLLM for its registry (first time: ~10 s) can take a while.
SLOW_CALL_TIMEOUT_S = 240.0


class DiscoveryApi:
    def __init__(self, daemon: DaemonClient) -> None:
        self._d = daemon

    async def models(self, query: ModelQuery) -> ModelPage:
        params = query.model_dump(exclude_none=True)
        return ModelPage.model_validate(await self._d.request("GET", "/v1/discovery/models", params=params))

    async def model(self, model_id: str) -> ModelDetail:
        body = await self._d.request("GET", "/v1/discovery/model", params={"id": model_id})
        return ModelDetail.model_validate(body)

    async def assess(self, request: AssessRequest) -> Assessment:
        body = await self._d.request(
            "POST",
            "/v1/discovery/assess",
            json=request.model_dump(exclude_none=True),
            timeout=SLOW_CALL_TIMEOUT_S,
        )
        return Assessment.model_validate(body)

    async def endpoints(self, query: EndpointQuery) -> EndpointScan:
        body = await self._d.request(
            "POST",
            "/v1/discovery/endpoints",
            json=query.model_dump(exclude_none=True),
            timeout=SLOW_CALL_TIMEOUT_S,
        )
        return EndpointScan.model_validate(body)

    async def refresh(self, request: RefreshRequest) -> RefreshResult:
        body = await self._d.request(
            "POST", "/v1/discovery/refresh", json=request.model_dump(), timeout=SLOW_CALL_TIMEOUT_S
        )
        return RefreshResult.model_validate(body)

    async def summary(self) -> DiscoverySummary:
        return DiscoverySummary.model_validate(await self._d.request("GET", "/v1/discovery/summary"))
