"""Auto-discovery endpoints: models on disk, running vLLM servers, assessments, refresh.

Thin: the work is in ``vllm_mcp.discovery.service.Discovery`` (``Services.discovery``). Paths
and response models are documented in docs/discovery.md (the model manager's list-models and
the vllm-auto-discovery MCP server call them).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
from vllm_mcp.daemon.routing import Call, EndpointGroup

group = EndpointGroup("discovery")


class ModelIdQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="A discovered model id.")


@group.get("/v1/discovery/models", query=ModelQuery, response=ModelPage)
async def discovery_models(call: Call[None]) -> ModelPage:
    """Models, adapters and GGUF files found on disk, filtered and paginated."""
    query: ModelQuery = call.query_model(ModelQuery)
    return await call.services.discovery.list_models(query)


@group.get("/v1/discovery/model", query=ModelIdQuery, response=ModelDetail)
async def discovery_model(call: Call[None]) -> ModelDetail:
    """Everything the files say about one model, plus hub metadata when online."""
    query: ModelIdQuery = call.query_model(ModelIdQuery)
    return await call.services.discovery.model_detail(query.id)


@group.post("/v1/discovery/assess", body=AssessRequest, response=Assessment)
async def discovery_assess(call: Call[AssessRequest]) -> Assessment:
    """Supported by the installed vLLM? Which parsers? Which GPUs does it fit, at what context?"""
    return await call.services.discovery.assess(call.body)


@group.post("/v1/discovery/endpoints", body=EndpointQuery, response=EndpointScan)
async def discovery_endpoints(call: Call[EndpointQuery]) -> EndpointScan:
    """Probe configured addresses and port ranges for running vLLM servers (read-only)."""
    return await call.services.discovery.endpoints(call.body)


@group.post("/v1/discovery/refresh", body=RefreshRequest, response=RefreshResult)
async def discovery_refresh(call: Call[RefreshRequest]) -> RefreshResult:
    """Rescan now (stat-only for unchanged folders), then refresh hub metadata when online."""
    return await call.services.discovery.refresh(call.body)


@group.get("/v1/discovery/summary", response=DiscoverySummary)
async def discovery_summary(call: Call[None]) -> DiscoverySummary:
    """Counts by kind and status, the scan roots, the registry source and the last probe."""
    return await call.services.discovery.summary()
