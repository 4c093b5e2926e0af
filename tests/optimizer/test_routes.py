"""The optimizer's control API in-process (ASGI transport over create_app), through OptimizerApi."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.testbed import tiny_model
from vllm_mcp.api.optimizer import (
    CheckFitRequest,
    EstimateRequest,
    PlacementModel,
    PlanRequest,
    RecommendRequest,
)
from vllm_mcp.client.daemon_client import DaemonClient
from vllm_mcp.client.optimizer_api import OptimizerApi
from vllm_mcp.config import Settings
from vllm_mcp.daemon.app import create_app
from vllm_mcp.daemon.services import Services
from vllm_mcp.errors import InvalidRequest, NotFound

DATA = Path(__file__).parent / "data"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[OptimizerApi, Services]]:
    settings = Settings.model_validate(
        {"paths": {"state_dir": str(tmp_path)}, "optimizer": {"gpus": "2xH100-80GB", "safety_margin_gib": 1}}
    )
    services = Services.build(settings)
    transport = httpx.ASGITransport(app=create_app(services))
    client = DaemonClient(settings, autostart=False, transport=transport)
    try:
        yield OptimizerApi(client), services
    finally:
        await client.aclose()
        services.db.close()


@pytest.mark.anyio
async def test_gpus_report_the_declared_inventory_and_the_honest_no_gpu(
    api: tuple[OptimizerApi, Services],
) -> None:
    opt, _ = api
    inv = await opt.gpus()
    assert inv.source == "declared" and inv.description == "2xH100-80GB"
    assert inv.no_gpu_reason is not None and "no NVIDIA GPU" in inv.no_gpu_reason
    assert "RTX4090-24GB" in inv.catalog
    other = await opt.gpus("1xRTX4090")
    assert [d.name for d in other.devices] == ["RTX4090-24GB"]
    with pytest.raises(InvalidRequest, match="unknown GPU"):
        await opt.gpus("1xZ80")


@pytest.mark.anyio
async def test_estimate_recommend_plan_over_http(api: tuple[OptimizerApi, Services]) -> None:
    opt, _ = api
    est = await opt.estimate(
        EstimateRequest(model="meta-llama/Llama-3.1-70B", tensor_parallel_size=2, max_model_len=8192)
    )
    assert est.model_kv_bytes_per_token == 327_680 and est.kv_bytes_per_token == 163_840
    assert est.fits and est.gpus == 2
    rec = await opt.recommend(
        RecommendRequest(model="meta-llama/Llama-3.1-8B", target_context=16_384, concurrency=4)
    )
    assert rec.feasible and rec.argv[:2] == ["--tensor-parallel-size", rec.flags[0].value]
    plan = await opt.plan(
        PlanRequest(
            models=[
                PlacementModel(model="meta-llama/Llama-3.1-8B", concurrency=2),
                PlacementModel(model="Qwen/Qwen3-8B", name="qwen"),
            ]
        )
    )
    assert plan.fits and [a.name for a in plan.assignments] == ["meta-llama/Llama-3.1-8B", "qwen"]
    assert all(a.config["kv_cache_memory_bytes"] for a in plan.assignments)


@pytest.mark.anyio
async def test_bad_requests_come_back_as_the_same_errors(api: tuple[OptimizerApi, Services]) -> None:
    opt, _ = api
    with pytest.raises(NotFound, match=r"no config\.json"):
        await opt.estimate(EstimateRequest(model="/nowhere/model"))
    with pytest.raises(InvalidRequest, match="exclude each other"):
        await opt.estimate(
            EstimateRequest(
                model="meta-llama/Llama-3.1-8B", gpu_memory_utilization=0.5, kv_cache_memory_bytes=10
            )
        )


@pytest.mark.anyio
async def test_check_fit_and_calibration_history(api: tuple[OptimizerApi, Services]) -> None:
    opt, services = api
    fit = await opt.check_fit(CheckFitRequest(model="meta-llama/Llama-3.1-70B", max_model_len=32_768))
    assert not fit.fits and fit.recommendation is not None and fit.recommendation.feasible
    assert "does not fit" in fit.message
    empty = await opt.calibration()
    assert empty.entries == [] and empty.correction is None
    if not (tiny_model() / "config.json").is_file():
        pytest.skip("tiny model not built (make testbed)")
    from vllm_mcp.core.engine_spec import EngineSpec

    spec = EngineSpec(
        model=str(tiny_model()), dtype="float32", max_model_len=2000, kv_cache_memory_bytes=1 << 26
    )
    services.optimizer.record_start(spec.model, spec, (DATA / "vllm-cpu-fp32-len2000.log").read_text())
    history = await opt.calibration(spec.model)
    (entry,) = history.entries
    assert entry.predicted["kv_tokens"] == entry.reported["kv_tokens"] == 64_000
    assert entry.errors["kv_tokens"] == 0.0
    assert history.correction is not None and history.correction.samples == 1


@pytest.mark.anyio
async def test_openapi_lists_the_optimizer_endpoints(api: tuple[OptimizerApi, Services]) -> None:
    opt, _ = api
    doc = await opt._d.request("GET", "/openapi.json")
    paths = set(doc["paths"])
    assert {
        "/v1/optimizer/gpus",
        "/v1/optimizer/estimate",
        "/v1/optimizer/recommend",
        "/v1/optimizer/plan",
        "/v1/optimizer/check-fit",
        "/v1/optimizer/calibration",
    } <= paths


@pytest.mark.anyio
async def test_load_refuses_a_config_that_cannot_fit_unless_forced(tmp_path: Path) -> None:
    from vllm_mcp.api.instances import LoadRequest
    from vllm_mcp.client.models_api import ModelsApi
    from vllm_mcp.errors import ConfigError, DoesNotFit

    settings = Settings.model_validate(
        {
            "paths": {"state_dir": str(tmp_path)},
            "optimizer": {"gpus": "2xH100-80GB"},
            "engine": {"vllm_bin": str(tmp_path / "no-vllm-here")},
        }
    )
    services = Services.build(settings)
    client = DaemonClient(settings, autostart=False, transport=httpx.ASGITransport(app=create_app(services)))
    models = ModelsApi(client)
    try:
        too_big = LoadRequest(model="meta-llama/Llama-3.1-70B", max_model_len=8192)
        with pytest.raises(DoesNotFit) as info:
            await models.load(too_big)
        assert "--tensor-parallel-size 2" in info.value.hint
        assert info.value.context["recommendation"][0]["flag"] == "--tensor-parallel-size"
        assert await models.list() == []  # nothing was started or written
        # forced, or a config that fits: past the gate, on to the supervisor (no vllm here)
        with pytest.raises(ConfigError, match="vllm executable"):
            await models.load(too_big.model_copy(update={"force": True}))
        fits = LoadRequest(model="meta-llama/Llama-3.1-70B", max_model_len=8192, tensor_parallel_size=2)
        with pytest.raises(ConfigError, match="vllm executable"):
            await models.load(fits)
    finally:
        await client.aclose()
        services.db.close()
