"""The Optimizer service: inventory choice, fit checks against what runs now, DoesNotFit with the
recommendation, calibration through the supervisor's hook (real SQLite, injected GPU probe)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.testbed import tiny_model
from vllm_mcp.api.instances import EngineSpecView, InstanceView
from vllm_mcp.config import Settings
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.gpu_catalog import Device, GiB, MiB
from vllm_mcp.core.lifecycle import State
from vllm_mcp.errors import DoesNotFit, InvalidRequest
from vllm_mcp.optimizer.gpus import GpuProbe
from vllm_mcp.optimizer.service import Optimizer, PlacementSpec, RunningEngine
from vllm_mcp.store import Database

DATA = Path(__file__).parent / "data"
HOST = Device(0, "host CPU", 24 * GiB, 20 * GiB, platform="cpu", source="host")
NO_GPU = GpuProbe((), reason="no NVIDIA GPU: NVML did not start (Driver Not Loaded)")


def settings(tmp_path: Path, **optimizer: Any) -> Settings:
    return Settings.model_validate({"paths": {"state_dir": str(tmp_path)}, "optimizer": optimizer})


def make(tmp_path: Path, probe: GpuProbe = NO_GPU, **optimizer: Any) -> Optimizer:
    return Optimizer(
        settings(tmp_path, **optimizer),
        Database(tmp_path / "s.db"),
        gpu_probe=lambda: probe,
        host=lambda: HOST,
    )


def h100(index: int, free_gib: float) -> Device:
    return Device(
        index,
        "NVIDIA H100 80GB HBM3",
        80 * GiB,
        int(free_gib * GiB),
        source="nvml",
        compute_capability=(9, 0),
        bandwidth_gbs=3350,
    )


def test_inventory_prefers_real_gpus_then_declared_then_the_host(tmp_path: Path) -> None:
    real = GpuProbe((h100(0, 79),), driver_version="580")
    assert make(tmp_path, real, gpus="2xL4").inventory().source == "nvml"
    assert make(tmp_path, real, gpus="2xL4", prefer_declared=True).inventory().description == "2xL4-24GB"
    declared = make(tmp_path, gpus="2xH100-80GB").inventory()
    assert declared.source == "declared" and declared.no_gpu_reason == NO_GPU.reason
    host = make(tmp_path).inventory()
    assert host.source == "host" and host.devices == (HOST,)
    assert make(tmp_path).inventory("1xRTX4090").description == "1xRTX4090-24GB"


def test_a_bad_declared_inventory_is_a_config_error(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown GPU"):
        settings(tmp_path, gpus="3xZ80")


async def _run(opt: Optimizer, spec: EngineSpec) -> Any:
    return await opt.check_fit(spec)


@pytest.mark.anyio
async def test_check_fit_takes_running_engines_off_declared_gpus(tmp_path: Path) -> None:
    opt = make(tmp_path, gpus="1xH100-80GB")
    spec = EngineSpec(model="meta-llama/Llama-3.1-8B", max_model_len=8192, kv_cache_memory_bytes=40 * GiB)
    assert (await opt.check_fit(spec)).fits

    async def running() -> list[RunningEngine]:
        cfg = EngineConfig(max_model_len=8192, kv_cache_memory_bytes=30 * GiB)
        return [RunningEngine("other", "meta-llama/Llama-3.1-8B", cfg, (0,))]

    opt.set_running_source(running)
    result = await opt.check_fit(spec)
    assert not result.fits
    assert [r.name for r in result.running] == ["other"]
    assert result.devices[0].memory_free_bytes is not None
    assert result.devices[0].memory_free_bytes < 40 * GiB
    assert result.recommendation is not None


@pytest.mark.anyio
async def test_real_gpus_count_their_free_memory(tmp_path: Path) -> None:
    busy = GpuProbe((h100(0, 10),))
    opt = make(tmp_path, busy)
    spec = EngineSpec(model="meta-llama/Llama-3.1-8B", max_model_len=8192)
    result = await opt.check_fit(spec)
    assert not result.fits
    assert "is free" in result.estimate.problems[0].message


@pytest.mark.anyio
async def test_ensure_fits_raises_does_not_fit_carrying_the_recommendation(tmp_path: Path) -> None:
    opt = make(tmp_path, gpus="4xH100-80GB")
    spec = EngineSpec(model="meta-llama/Llama-3.1-70B", max_model_len=32_768)
    with pytest.raises(DoesNotFit) as info:
        await opt.ensure_fits(spec)
    err = info.value
    assert "does not fit" in err.message
    assert "--tensor-parallel-size" in err.hint and "force" in err.hint
    flags = {f["flag"]: f["value"] for f in err.context["recommendation"]}
    assert int(flags["--tensor-parallel-size"]) > 1
    ok = EngineSpec(model="meta-llama/Llama-3.1-70B", max_model_len=32_768, tensor_parallel_size=4)
    assert (await opt.ensure_fits(ok)).fits


@pytest.mark.anyio
async def test_gpus_the_inventory_lacks_do_not_fit(tmp_path: Path) -> None:
    opt = make(tmp_path, gpus="1xH100-80GB")
    with pytest.raises(DoesNotFit, match=r"needs GPU\(s\) \[0, 1\]"):
        await opt.check_fit(EngineSpec(model="meta-llama/Llama-3.1-8B", tensor_parallel_size=2))


@pytest.mark.anyio
async def test_cpu_host_checks_kv_bytes_against_ram(tmp_path: Path) -> None:
    if not (tiny_model() / "config.json").is_file():
        pytest.skip("tiny model not built (make testbed)")
    opt = make(tmp_path)
    small = EngineSpec(model=str(tiny_model()), max_model_len=2048, kv_cache_memory_bytes=64 * MiB)
    assert (await opt.check_fit(small)).fits
    huge = EngineSpec(model=str(tiny_model()), max_model_len=2048, kv_cache_memory_bytes=100 * GiB)
    result = await opt.check_fit(huge)
    assert not result.fits and "more than host CPU" in result.message


def test_estimate_recommend_plan_through_the_service(tmp_path: Path) -> None:
    opt = make(tmp_path, gpus="2xH100-80GB")
    est = opt.estimate("meta-llama/Llama-3.1-8B", EngineConfig(max_model_len=8192))
    assert est.kv_bytes_per_token == 131_072 and est.fits
    with pytest.raises(InvalidRequest, match="no device 5"):
        opt.estimate("meta-llama/Llama-3.1-8B", EngineConfig(), device_index=5)
    rec = opt.recommend("meta-llama/Llama-3.1-70B", target_context=8192)
    assert rec.feasible and rec.devices_used == 2
    plan = opt.plan(
        [
            PlacementSpec("meta-llama/Llama-3.1-8B", 8192, 4, name="a"),
            PlacementSpec("Qwen/Qwen3-8B", 8192, 4, name="b"),
        ]
    )
    assert plan.fits and len(plan.assignments) == 2
    with pytest.raises(InvalidRequest, match="no models"):
        opt.plan([])


def test_vllm_cpu_kvcache_space_overrides_the_flags(tmp_path: Path) -> None:
    s = Settings.model_validate(
        {"paths": {"state_dir": str(tmp_path)}, "engine": {"extra_env": {"VLLM_CPU_KVCACHE_SPACE": "2"}}}
    )
    opt = Optimizer(s, Database(tmp_path / "s.db"), gpu_probe=lambda: NO_GPU, host=lambda: HOST)
    est = opt.estimate("meta-llama/Llama-3.2-1B", EngineConfig(max_model_len=8192))
    assert est.config.kv_cache_memory_bytes == 2 * GiB


@pytest.mark.anyio
async def test_the_start_hook_records_calibration_and_later_estimates_use_it(tmp_path: Path) -> None:
    if not (tiny_model() / "config.json").is_file():
        pytest.skip("tiny model not built (make testbed)")
    opt = make(tmp_path)
    spec = EngineSpec(
        model=str(tiny_model()), max_model_len=2000, dtype="float32", kv_cache_memory_bytes=64 * MiB
    )
    view = InstanceView(
        name="tiny", model=spec.model, state=State.READY, spec=EngineSpecView.of(spec), state_since=0.0
    )
    await opt.on_engine_started(view, (DATA / "vllm-cpu-fp32-len2000.log").read_text())
    (entry,) = opt.calibration_history(spec.model)
    assert entry.observation.reported_kv_tokens == entry.observation.predicted_kv_tokens == 64_000
    assert opt.correction(spec.model, "cpu").samples == 1
    await opt.on_engine_started(view, "garbage")  # nothing to learn: no row, no error
    assert len(opt.calibration_history()) == 1


@pytest.mark.anyio
async def test_the_load_gate_refuses_only_what_it_can_judge(tmp_path: Path) -> None:
    too_big = EngineSpec(model="meta-llama/Llama-3.1-70B", served_name="big", max_model_len=8192)
    opt = make(tmp_path, gpus="1xH100-80GB")
    with pytest.raises(DoesNotFit, match="does not fit"):
        await opt.check_before_load(too_big)
    # files not here (an HF id vLLM would download): nothing to estimate, no refusal
    await opt.check_before_load(EngineSpec(model="someone/not-downloaded", max_model_len=8192))

    async def holding() -> list[RunningEngine]:
        return [RunningEngine("big", "meta-llama/Llama-3.1-70B", EngineConfig(max_model_len=8192))]

    opt.set_running_source(holding)  # the served name is held: the supervisor reuses or refuses it
    await opt.check_before_load(too_big)
    off = make(tmp_path / "off", gpus="1xH100-80GB", check_before_load=False)
    await off.check_before_load(too_big)
