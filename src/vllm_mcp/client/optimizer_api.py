"""Typed calls to the resource-optimizer endpoints, shared by the CLI verbs and the MCP tools."""

from __future__ import annotations

from typing import Any

from vllm_mcp.api.optimizer import (
    CalibrationView,
    CheckFitRequest,
    EstimateRequest,
    FitView,
    InventoryView,
    MemoryEstimateView,
    PlacementView,
    PlanRequest,
    RecommendationView,
    RecommendRequest,
)
from vllm_mcp.client.daemon_client import DaemonClient

#: Recommending or planning tries many configurations; a model's headers may be on a slow disk.
SLOW_CALL_S = 120.0


class OptimizerApi:
    def __init__(self, daemon: DaemonClient) -> None:
        self._d = daemon

    async def _post(self, path: str, body: Any) -> Any:
        return await self._d.request(
            "POST", path, json=body.model_dump(exclude_none=True), timeout=SLOW_CALL_S
        )

    async def gpus(self, gpus: str | None = None) -> InventoryView:
        params = {"gpus": gpus} if gpus else None
        return InventoryView.model_validate(await self._d.request("GET", "/v1/optimizer/gpus", params=params))

    async def estimate(self, request: EstimateRequest) -> MemoryEstimateView:
        return MemoryEstimateView.model_validate(await self._post("/v1/optimizer/estimate", request))

    async def recommend(self, request: RecommendRequest) -> RecommendationView:
        return RecommendationView.model_validate(await self._post("/v1/optimizer/recommend", request))

    async def plan(self, request: PlanRequest) -> PlacementView:
        return PlacementView.model_validate(await self._post("/v1/optimizer/plan", request))

    async def check_fit(self, request: CheckFitRequest) -> FitView:
        return FitView.model_validate(await self._post("/v1/optimizer/check-fit", request))

    async def calibration(self, model: str | None = None, limit: int = 20) -> CalibrationView:
        params: dict[str, Any] = {"limit": limit}
        if model:
            params["model"] = model
        body = await self._d.request("GET", "/v1/optimizer/calibration", params=params)
        return CalibrationView.model_validate(body)
