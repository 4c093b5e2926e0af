"""Resource-optimizer endpoints: GPU inventory, memory estimate, recommendation, placement, fit
check against what runs now, calibration history. Thin: the work is in ``Optimizer``.

Estimates read model files (safetensors headers) and the recommender may try a few thousand
configurations, so those calls run in a worker thread and never stall the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio

from vllm_mcp.api.optimizer import (
    CalibrationEntryView,
    CalibrationQuery,
    CalibrationView,
    CheckFitRequest,
    CorrectionView,
    DeviceView,
    EstimateRequest,
    FitView,
    GpusQuery,
    InventoryView,
    MemoryEstimateView,
    PlacementView,
    PlanRequest,
    RecommendationView,
    RecommendRequest,
    RunningView,
    TopologyView,
)
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.gpu_catalog import CATALOG
from vllm_mcp.daemon.routing import Call, EndpointGroup
from vllm_mcp.optimizer.calibration import CalibrationEntry
from vllm_mcp.optimizer.service import Optimizer, PlacementSpec

group = EndpointGroup("optimizer")

T = TypeVar("T")


async def _in_thread(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


def _optimizer(call: Call[Any]) -> Optimizer:
    return call.services.optimizer


@group.get("/v1/optimizer/gpus", query=GpusQuery, response=InventoryView)
async def list_gpus(call: Call[None]) -> InventoryView:
    """The GPUs to plan for: NVML's, else the declared inventory, else the host's RAM (no GPU)."""
    query: GpusQuery = call.query_model(GpusQuery)
    inv = await _in_thread(lambda: _optimizer(call).inventory(query.gpus))
    return InventoryView(
        source=inv.source,
        description=inv.description,
        devices=[DeviceView.of(d) for d in inv.devices],
        no_gpu_reason=inv.no_gpu_reason,
        driver_version=inv.driver_version,
        topology=[TopologyView(a=t.a, b=t.b, level=t.level) for t in inv.topology],
        catalog=[g.key for g in CATALOG],
    )


@group.post("/v1/optimizer/estimate", body=EstimateRequest, response=MemoryEstimateView)
async def estimate(call: Call[EstimateRequest]) -> MemoryEstimateView:
    """Per-GPU memory breakdown of one engine config, and whether it fits."""
    body = call.body
    est = await _in_thread(
        lambda: _optimizer(call).estimate(
            body.model,
            body.engine_config(),
            gpus=body.gpus,
            device_index=body.gpu_index,
            concurrency=body.concurrency,
        )
    )
    return MemoryEstimateView.of(est)


@group.post("/v1/optimizer/recommend", body=RecommendRequest, response=RecommendationView)
async def recommend(call: Call[RecommendRequest]) -> RecommendationView:
    """Engine flags for a model, a target context and concurrency, with a reason for each."""
    body = call.body
    rec = await _in_thread(
        lambda: _optimizer(call).recommend(
            body.model,
            target_context=body.target_context,
            concurrency=body.concurrency,
            preference=body.preference,
            gpus=body.gpus,
        )
    )
    return RecommendationView.of(rec)


@group.post("/v1/optimizer/plan", body=PlanRequest, response=PlacementView)
async def plan(call: Call[PlanRequest]) -> PlacementView:
    """Place several models on the GPUs (sharing by kv-cache bytes), or say what does not fit."""
    specs = [
        PlacementSpec(
            model=m.model,
            max_model_len=m.max_model_len,
            concurrency=m.concurrency,
            name=m.name,
            tensor_parallel_size=m.tensor_parallel_size,
            kv_cache_dtype=m.kv_cache_dtype,
            quantization=m.quantization,
        )
        for m in call.body.models
    ]
    result = await _in_thread(lambda: _optimizer(call).plan(specs, gpus=call.body.gpus))
    return PlacementView.of(result)


@group.post("/v1/optimizer/check-fit", body=CheckFitRequest, response=FitView)
async def check_fit(call: Call[CheckFitRequest]) -> FitView:
    """Would this engine fit beside what runs now? With a recommendation when it would not."""
    body = call.body
    spec = EngineSpec(
        model=body.model,
        tensor_parallel_size=body.tensor_parallel_size,
        pipeline_parallel_size=body.pipeline_parallel_size,
        gpu_memory_utilization=body.gpu_memory_utilization,
        kv_cache_memory_bytes=body.kv_cache_memory_bytes,
        max_model_len=body.max_model_len,
        dtype=body.dtype,
        quantization=body.quantization,
        kv_cache_dtype=body.kv_cache_dtype,
        enforce_eager=body.enforce_eager,
        gpus=tuple(body.gpus),
        extra_flags=tuple(body.extra_flags),
    )
    result = await _optimizer(call).check_fit(spec, concurrency=body.concurrency)
    rec = result.recommendation
    return FitView(
        fits=result.fits,
        message=result.message,
        model=result.model,
        devices=[DeviceView.of(d) for d in result.devices],
        estimate=MemoryEstimateView.of(result.estimate),
        running=[RunningView(name=r.name, model=r.model, gpus=list(r.gpus)) for r in result.running],
        recommendation=RecommendationView.of(rec) if rec else None,
    )


def _entry(e: CalibrationEntry) -> CalibrationEntryView:
    o = e.observation
    return CalibrationEntryView(
        id=e.id,
        at=e.at,
        model=e.model_key,
        vllm_version=e.vllm_version,
        device=e.device,
        platform=e.platform,
        config=e.config,
        predicted={
            "kv_tokens": o.predicted_kv_tokens,
            "weights_bytes": o.predicted_weights_bytes,
            "graph_bytes": o.predicted_graph_bytes,
            "residual_bytes": o.predicted_residual_bytes,
        },
        reported={
            "kv_tokens": o.reported_kv_tokens,
            "weights_bytes": o.reported_weights_bytes,
            "graph_bytes": o.reported_graph_bytes,
            "residual_bytes": o.reported_residual_bytes,
        },
        errors=e.errors,
        report=e.report,
    )


@group.get("/v1/optimizer/calibration", query=CalibrationQuery, response=CalibrationView)
async def calibration(call: Call[None]) -> CalibrationView:
    """What vLLM reported at past starts next to what was predicted, newest first."""
    query: CalibrationQuery = call.query_model(CalibrationQuery)
    opt = _optimizer(call)
    entries = opt.calibration_history(query.model, limit=query.limit)
    correction = None
    if query.model is not None and entries:
        c = opt.correction(query.model, entries[0].platform)
        correction = CorrectionView(
            samples=c.samples, weights=c.weights, graph=c.graph, residual=c.residual, kv_tokens=c.kv_tokens
        )
    return CalibrationView(entries=[_entry(e) for e in entries], correction=correction)
