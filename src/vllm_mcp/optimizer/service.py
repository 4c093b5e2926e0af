"""``Optimizer``: the daemon's resource optimizer — estimates, recommendations, placement, fit
checks against what runs now, the GPU inventory, and calibration from every start.

The pure work is in ``core`` (``vram``, ``recommend``, ``placement``); this class supplies what
needs the world: the model's files, NVML or the declared inventory, the calibration history,
and the engines running now (a callable the daemon wires to the supervisor, so this package does
not import its sibling). Public contract for the model manager:

    result = await optimizer.check_fit(spec)          # FitResult, never raises for "no fit"
    await optimizer.ensure_fits(spec)                  # raises DoesNotFit carrying the recommendation
    await optimizer.on_engine_started(view, log_text)  # the supervisor's on_started hook
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import anyio

from vllm_mcp.config import Settings
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.gpu_catalog import Device, GiB, describe_inventory, parse_inventory
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.placement import PlacementPlan, PlacementRequest, plan_placement
from vllm_mcp.core.recommend import Preference, Recommendation, recommend
from vllm_mcp.core.vram import Correction, MemoryEstimate, estimate_memory
from vllm_mcp.errors import DoesNotFit, InvalidRequest, NotFound
from vllm_mcp.optimizer import calibration
from vllm_mcp.optimizer.gpus import GpuProbe, TopologyLink, host_device, probe_nvml
from vllm_mcp.optimizer.model_files import load_model_dims

if TYPE_CHECKING:
    from vllm_mcp.api.instances import InstanceView

__all__ = ["FitResult", "Inventory", "Optimizer", "PlacementSpec", "RunningEngine", "running_engines"]

log = logging.getLogger(__name__)

InventorySource = Literal["nvml", "declared", "host"]


@dataclass(frozen=True)
class RunningEngine:
    """An engine that holds memory now (from the supervisor)."""

    name: str
    model: str
    config: EngineConfig
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class Inventory:
    devices: tuple[Device, ...]
    source: InventorySource
    no_gpu_reason: str | None = None  # set when NVML found none (honest, even with a declared plan)
    driver_version: str | None = None
    topology: tuple[TopologyLink, ...] = ()

    @property
    def description(self) -> str:
        return describe_inventory(self.devices)


@dataclass(frozen=True)
class FitResult:
    """Whether ``model`` with ``config`` fits on the devices it would use, as things run now."""

    model: str
    fits: bool
    devices: tuple[Device, ...]  # the ones it would use, free memory as of now
    estimate: MemoryEstimate
    running: tuple[RunningEngine, ...]
    recommendation: Recommendation | None  # only when it does not fit

    @property
    def message(self) -> str:
        if self.fits:
            margin = self.estimate.margin_bytes / GiB
            return f"{self.model} fits on {describe_inventory(self.devices)} with {margin:.2f} GiB to spare"
        problems = "; ".join(p.message for p in self.estimate.problems)
        return f"{self.model} does not fit on {describe_inventory(self.devices)}: {problems}"


RunningSource = Callable[[], Awaitable[Sequence[RunningEngine]]]


def running_engines(views: Sequence[InstanceView]) -> list[RunningEngine]:
    """The instances that hold memory now (live states, ours: external ones have no spec)."""
    from vllm_mcp.core.lifecycle import LIVE_STATES

    out = []
    for view in views:
        if view.spec is None or view.state not in LIVE_STATES:
            continue
        spec = EngineSpec.from_dict(view.spec.model_dump())
        gpus = tuple(view.gpus) or spec.gpus
        out.append(RunningEngine(view.name, spec.model, EngineConfig.from_spec(spec), gpus))
    return out


async def _nothing_running() -> Sequence[RunningEngine]:
    return ()


class Optimizer:
    def __init__(
        self,
        settings: Settings,
        db: calibration.Database,
        *,
        gpu_probe: Callable[[], GpuProbe] = probe_nvml,
        host: Callable[[], Device] = host_device,
        running: RunningSource = _nothing_running,
    ) -> None:
        self.settings = settings
        self.db = db
        self._probe = gpu_probe
        self._host = host
        self._running = running

    def set_running_source(self, running: RunningSource) -> None:
        """Where ``check_fit`` learns what runs now (the daemon wires the supervisor here)."""
        self._running = running

    # -- inputs ----------------------------------------------------------------------------

    @property
    def safety_margin_bytes(self) -> int:
        return int(self.settings.optimizer.safety_margin_gib * GiB)

    def inventory(self, gpus: str | None = None) -> Inventory:
        """Real GPUs (NVML), else the declared planning inventory, else the host's RAM.

        ``gpus`` (e.g. "2xH100-80GB") plans for that hardware instead, whatever is installed.
        """
        probe = self._probe()
        declared_text = gpus or self.settings.optimizer.gpus
        if gpus:
            return Inventory(parse_inventory(gpus), "declared", probe.reason, probe.driver_version)
        prefer = self.settings.optimizer.prefer_declared
        if probe.gpus and not (declared_text and prefer):
            return Inventory(probe.gpus, "nvml", None, probe.driver_version, probe.topology)
        if declared_text:
            return Inventory(parse_inventory(declared_text), "declared", probe.reason, probe.driver_version)
        return Inventory((self._host(),), "host", probe.reason)

    def model_dims(self, model: str) -> ModelDims:
        cache = self.settings.models.cache_dir or self.settings.discovery.hf_cache_dir
        return load_model_dims(model, cache)

    def correction(self, model: str, platform: str) -> Correction:
        """What later estimates of ``model`` on ``platform`` ("cuda", "cpu") learn from its starts."""
        s = self.settings.optimizer
        if not s.calibrate:
            return Correction()
        version = calibration.latest_version(self.db, model)
        if version is None:
            return Correction()
        return calibration.correction_for(
            self.db, model, version, platform=platform, window=s.calibration_window
        )

    def _cpu_config(self, config: EngineConfig, device: Device) -> EngineConfig:
        """On the CPU backend ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB) overrides the KV flags."""
        space = self.settings.engine.extra_env.get("VLLM_CPU_KVCACHE_SPACE")
        if device.platform != "cpu" or not space or not space.isdigit() or int(space) == 0:
            return config
        return config.with_(kv_cache_memory_bytes=int(space) * GiB, gpu_memory_utilization=None)

    # -- the four questions ------------------------------------------------------------------

    def estimate(
        self,
        model: str,
        config: EngineConfig,
        *,
        gpus: str | None = None,
        device_index: int | None = None,
        concurrency: int = 1,
    ) -> MemoryEstimate:
        """Per-GPU breakdown for ``model`` with ``config`` on one device of the inventory."""
        inv = self.inventory(gpus)
        device = self._device(inv, device_index)
        dims = self.model_dims(model)
        config = self._cpu_config(config, device)
        return estimate_memory(
            dims,
            config,
            device,
            target_concurrency=concurrency,
            safety_margin_bytes=self.safety_margin_bytes,
            correction=self.correction(model, device.platform),
        )

    def recommend(
        self,
        model: str,
        *,
        target_context: int | None = None,
        concurrency: int = 1,
        preference: Preference = "latency",
        gpus: str | None = None,
    ) -> Recommendation:
        inv = self.inventory(gpus)
        dims = self.model_dims(model)
        return recommend(
            dims,
            inv.devices,
            target_context=target_context,
            concurrency=concurrency,
            preference=preference,
            utilization=self.settings.engine_defaults.gpu_memory_utilization,
            safety_margin_bytes=self.safety_margin_bytes,
            correction=self.correction(model, inv.devices[0].platform),
        )

    def plan(self, requests: Sequence[PlacementSpec], *, gpus: str | None = None) -> PlacementPlan:
        inv = self.inventory(gpus)
        built = [
            PlacementRequest(
                name=r.name or r.model,
                model=self.model_dims(r.model),
                max_model_len=r.max_model_len,
                concurrency=r.concurrency,
                tensor_parallel_size=r.tensor_parallel_size,
                kv_cache_dtype=r.kv_cache_dtype,
                quantization=r.quantization,
            )
            for r in requests
        ]
        if not built:
            raise InvalidRequest("no models to place", hint="give at least one model", field="models")
        return plan_placement(built, inv.devices, safety_margin_bytes=self.safety_margin_bytes)

    async def check_fit(self, spec: EngineSpec, *, concurrency: int = 1) -> FitResult:
        """Does ``spec`` fit on the devices it would run on, given what runs now?

        Real GPUs and the host report free memory that already excludes running engines; on a
        declared inventory the running engines' estimates are taken off each GPU first.
        """
        running = tuple(await self._running())
        inv = self.inventory()
        config = EngineConfig.from_spec(spec)
        wanted = spec.gpus or tuple(range(config.world_size))
        everything = inv.devices
        if inv.source == "declared":
            everything = self._minus_running(everything, running)
        chosen = Inventory(everything, inv.source)
        devices = everything if inv.source == "host" else self._pick(chosen, wanted, spec.model)
        tight = min(devices, key=lambda d: d.available_bytes)
        config = self._cpu_config(config, tight)
        dims = self.model_dims(spec.model)
        est = estimate_memory(
            dims,
            config,
            tight,
            target_concurrency=concurrency,
            safety_margin_bytes=self.safety_margin_bytes,
            correction=self.correction(spec.model, tight.platform),
        )
        rec = None
        if not est.fits:  # what would fit on the whole inventory, as it is used now
            rec = recommend(
                dims,
                everything,
                target_context=config.max_model_len,
                concurrency=concurrency,
                utilization=self.settings.engine_defaults.gpu_memory_utilization,
                safety_margin_bytes=self.safety_margin_bytes,
            )
        return FitResult(spec.model, est.fits, devices, est, running, rec)

    async def ensure_fits(self, spec: EngineSpec, *, concurrency: int = 1) -> FitResult:
        """``check_fit``, raising ``DoesNotFit`` (message, hint with the recommended flags, and
        the recommendation in its context) when the estimator says it cannot fit."""
        result = await self.check_fit(spec, concurrency=concurrency)
        if result.fits:
            return result
        rec = result.recommendation
        if rec is not None and rec.best is not None:
            flags = " ".join(f"{f.flag} {f.value}" for f in rec.flags if f.value != "(none)")
            hint = f"Try: {flags} (or load with force to start it anyway)."
        else:
            what = "; ".join(rec.reasons) if rec else ""
            hint = f"{what}. Or load with force to start it anyway.".lstrip(". ")
        raise DoesNotFit(
            result.message,
            hint=hint,
            model=spec.model,
            margin_bytes=result.estimate.margin_bytes,
            problems=[{"message": p.message, "hint": p.hint} for p in result.estimate.problems],
            recommendation=[{"flag": f.flag, "value": f.value, "reason": f.reason} for f in rec.flags]
            if rec
            else [],
        )

    async def check_before_load(self, spec: EngineSpec) -> None:
        """The model manager's gate before a (non-forced) load: ``DoesNotFit`` when the estimator
        says ``spec`` cannot fit now, carrying the recommendation.

        Skipped when ``optimizer.check_before_load`` is off; when an engine already holds the
        served name (the supervisor reuses it or reports the conflict); and when the model's
        dimensions cannot be read (an HF id not downloaded yet: there is nothing to estimate).
        """
        if not self.settings.optimizer.check_before_load:
            return
        running = await self._running()
        if any(r.name == spec.served_name for r in running):
            return
        try:
            await anyio.to_thread.run_sync(self.model_dims, spec.model)
        except (NotFound, InvalidRequest) as exc:
            log.info("no memory check for %s: %s", spec.model, exc.message)
            return
        await self.ensure_fits(spec)

    # -- calibration -----------------------------------------------------------------------

    def calibration_history(
        self, model: str | None = None, *, limit: int = 50
    ) -> list[calibration.CalibrationEntry]:
        return calibration.history(self.db, model, None, limit)

    def record_start(
        self, model: str, spec: EngineSpec, log_text: str, metrics_text: str | None = None
    ) -> calibration.CalibrationEntry | None:
        """Record one start of ``spec`` (its log, and its /metrics page for cache_config_info)."""
        inv = self.inventory()
        device = inv.devices[0] if inv.source != "nvml" else self._pick(inv, spec.gpus or (0,), model)[0]
        if "CPU KV cache size" in log_text:
            device = self._host()
        return calibration.record_start_report(
            self.db, model, None, spec, log_text, metrics_text, dims=self.model_dims(model), device=device
        )

    async def on_engine_started(self, view: InstanceView, log_text: str) -> None:
        """The supervisor's ``on_started`` hook: record what vLLM reported. Never raises."""
        if not self.settings.optimizer.calibrate or view.spec is None:
            return
        try:
            import httpx

            spec = EngineSpec.from_dict(view.spec.model_dump())
            metrics = None
            if view.base_url:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    resp = await client.get(view.base_url.rstrip("/") + "/metrics")
                    metrics = resp.text if resp.status_code == 200 else None
            await anyio.to_thread.run_sync(self.record_start, spec.model, spec, log_text, metrics)
        except Exception:  # a calibration failure must never fail a start
            log.warning("could not record the start of %s for calibration", view.name, exc_info=True)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _device(inv: Inventory, index: int | None) -> Device:
        if index is None:
            return min(inv.devices, key=lambda d: (-d.available_bytes, d.index))
        for d in inv.devices:
            if d.index == index:
                return d
        raise InvalidRequest(
            f"no device {index} in the inventory ({inv.description})",
            hint=f"use an index from 0 to {len(inv.devices) - 1}",
            field="gpu_index",
        )

    @staticmethod
    def _pick(inv: Inventory, wanted: Sequence[int], model: str) -> tuple[Device, ...]:
        by_index = {d.index: d for d in inv.devices}
        missing = [i for i in wanted if i not in by_index]
        if missing:
            raise DoesNotFit(
                f"{model} needs GPU(s) {list(wanted)} but the inventory is {inv.description}",
                hint="lower tensor_parallel_size × pipeline_parallel_size, or pick GPUs that exist",
                model=model,
            )
        return tuple(by_index[i] for i in wanted)

    def _minus_running(
        self, devices: tuple[Device, ...], running: Sequence[RunningEngine]
    ) -> tuple[Device, ...]:
        """Declared devices with each running engine's estimated use taken off its GPUs."""
        used = {d.index: 0 for d in devices}
        for engine in running:
            on = engine.gpus or tuple(range(engine.config.world_size))
            shared = [i for i in on if i in used]
            if not shared:
                continue
            device = next(d for d in devices if d.index == shared[0])
            try:
                est = estimate_memory(self.model_dims(engine.model), engine.config, device)
                taken = est.total_bytes
            except Exception:  # an engine we cannot size: assume it took its whole fraction
                taken = int(device.memory_total_bytes * (engine.config.gpu_memory_utilization or 0.9))
            for i in shared:
                used[i] += taken
        return tuple(
            replace(d, memory_free_bytes=max(d.memory_total_bytes - used[d.index], 0)) for d in devices
        )


@dataclass(frozen=True)
class PlacementSpec:
    """One model of a placement request, as a caller names it (resolved by ``Optimizer.plan``)."""

    model: str
    max_model_len: int
    concurrency: int = 1
    name: str | None = None
    tensor_parallel_size: int | None = None
    kv_cache_dtype: str = "auto"
    quantization: str | None = None
