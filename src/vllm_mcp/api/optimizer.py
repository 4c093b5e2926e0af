"""Wire schemas of the resource optimizer (control API, CLI ``estimate|recommend|plan``, MCP tools).

Requests name a model by local path, cached HF id, or a reference name (see
``core.model_catalog``), and may plan for declared hardware (``gpus="2xH100-80GB"``) instead of
what is installed. Views are built from the core results with ``of(...)``; byte counts are
plain integers (GiB figures are for people and live in the renderers).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.engine_spec import DTYPES, KV_CACHE_DTYPES
from vllm_mcp.core.gpu_catalog import CATALOG, Device
from vllm_mcp.core.placement import Fix, PlacementPlan
from vllm_mcp.core.recommend import Candidate, Recommendation
from vllm_mcp.core.vram import MemoryEstimate

__all__ = [
    "CalibrationView",
    "CheckFitRequest",
    "EstimateRequest",
    "FitView",
    "GpusQuery",
    "InventoryView",
    "MemoryEstimateView",
    "PlacementModel",
    "PlacementView",
    "PlanRequest",
    "RecommendRequest",
    "RecommendationView",
]

GPUS_DESCRIPTION = (
    "Plan for this hardware instead of what is installed: COUNTxNAME, comma-separated, e.g. "
    "'2xH100-80GB' or '1xRTX4090' (catalog: " + ", ".join(g.key for g in CATALOG) + ")."
)
MODEL_DESCRIPTION = (
    "Local model folder, Hugging Face id already in the local cache, or a reference model such as "
    "'meta-llama/Llama-3.1-8B'."
)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EngineFields(_Wire):
    """The memory-relevant engine flags; unset = vLLM's default."""

    tensor_parallel_size: int = Field(1, ge=1, le=512, description="GPUs per pipeline stage.")
    pipeline_parallel_size: int = Field(1, ge=1, le=512, description="Pipeline stages.")
    dtype: str = Field("auto", description=f"Weights dtype: {', '.join(sorted(DTYPES))}.")
    quantization: str | None = Field(None, description="Quantization method, e.g. fp8, awq, gptq.")
    kv_cache_dtype: str = Field("auto", description=f"KV-cache dtype: {', '.join(sorted(KV_CACHE_DTYPES))}.")
    max_model_len: int | None = Field(None, ge=1, description="Context length (default: the model's).")
    max_num_seqs: int | None = Field(None, ge=1, description="Sequences batched at once.")
    max_num_batched_tokens: int | None = Field(None, ge=1, description="Tokens per scheduler step.")
    block_size: int | None = Field(None, ge=1, description="KV block size in tokens (GPU 16, CPU 128).")
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="Fraction of each GPU vLLM may take (default 0.9)."
    )
    kv_cache_memory_bytes: int | None = Field(
        None, ge=1, description="Exact KV-cache bytes per GPU (excludes gpu_memory_utilization)."
    )
    enforce_eager: bool = Field(False, description="No CUDA graphs (saves their memory).")

    def engine_config(self) -> EngineConfig:
        return EngineConfig.from_dict(self.model_dump(exclude={"model", "gpus", "gpu_index", "concurrency"}))


class EstimateRequest(EngineFields):
    model: str = Field(description=MODEL_DESCRIPTION)
    gpus: str | None = Field(None, description=GPUS_DESCRIPTION)
    gpu_index: int | None = Field(None, ge=0, description="Estimate for this device (default: the roomiest).")
    concurrency: int = Field(1, ge=1, le=100_000, description="Requests of max_model_len the KV must hold.")


class Problem(_Wire):
    message: str
    hint: str


class CorrectionView(_Wire):
    samples: int = Field(description="Starts the correction learnt from (0: none yet).")
    weights: float
    graph: float
    residual: float
    kv_tokens: float


class MemoryEstimateView(_Wire):
    """Per-GPU breakdown of one engine."""

    model: str
    device: str
    platform: str
    gpus: int = Field(description="GPUs the engine uses (TP × PP).")
    config: dict[str, Any] = Field(description="The engine config with vLLM's defaults filled in.")
    weights_bytes: int
    kv_bytes_per_token: int = Field(description="KV bytes per token on this GPU, all its layers.")
    model_kv_bytes_per_token: int = Field(description="KV bytes per token of the whole model at TP=1.")
    kv_cache_bytes: int
    kv_capacity_tokens: int = Field(description="What vLLM will log as 'KV cache size: N tokens'.")
    max_concurrency: float = Field(description="Requests of max_model_len the KV cache holds at once.")
    num_blocks: int
    activation_bytes: int
    cuda_graph_bytes: int
    overhead_bytes: int
    total_bytes: int
    limit_bytes: int = Field(description="What the engine may take: (free) memory less the safety margin.")
    required_kv_bytes: int = Field(description="The KV pool the target concurrency needs.")
    fits: bool
    margin_bytes: int = Field(description="Headroom left (negative: short by that much).")
    problems: list[Problem]
    notes: list[str]
    calibration: CorrectionView

    @classmethod
    def of(cls, est: MemoryEstimate) -> MemoryEstimateView:
        c = est.correction
        return cls(
            model=est.model,
            device=est.device,
            platform=est.platform,
            gpus=est.gpus,
            config=est.config.to_engine_config().to_dict(),
            weights_bytes=est.weights_bytes,
            kv_bytes_per_token=est.kv_bytes_per_token,
            model_kv_bytes_per_token=est.model_kv_bytes_per_token,
            kv_cache_bytes=est.kv.pool_bytes,
            kv_capacity_tokens=est.kv.tokens,
            max_concurrency=round(est.kv.max_concurrency, 2),
            num_blocks=est.kv.num_blocks,
            activation_bytes=est.activation_bytes,
            cuda_graph_bytes=est.cuda_graph_bytes,
            overhead_bytes=est.overhead_bytes,
            total_bytes=est.total_bytes,
            limit_bytes=est.limit_bytes,
            required_kv_bytes=est.required_kv_bytes,
            fits=est.fits,
            margin_bytes=est.margin_bytes,
            problems=[Problem(message=p.message, hint=p.hint) for p in est.problems],
            notes=list(est.notes),
            calibration=CorrectionView(
                samples=c.samples,
                weights=c.weights,
                graph=c.graph,
                residual=c.residual,
                kv_tokens=c.kv_tokens,
            ),
        )


class RecommendRequest(_Wire):
    model: str = Field(description=MODEL_DESCRIPTION)
    target_context: int | None = Field(
        None, ge=1, description="Tokens per request (default: min(model, 8192))."
    )
    concurrency: int = Field(1, ge=1, le=100_000, description="Requests of target_context served at once.")
    preference: Literal["latency", "throughput"] = Field("latency", description="What to optimise.")
    gpus: str | None = Field(None, description=GPUS_DESCRIPTION)


class FlagView(_Wire):
    flag: str
    value: str
    reason: str


class CandidateView(_Wire):
    summary: str
    config: dict[str, Any]
    estimate: MemoryEstimateView

    @classmethod
    def of(cls, c: Candidate) -> CandidateView:
        return cls(summary=c.summary, config=c.config.to_dict(), estimate=MemoryEstimateView.of(c.estimate))


class RecommendationView(_Wire):
    feasible: bool
    model: str
    device: str
    devices_used: int
    devices_available: int
    target_context: int
    concurrency: int
    preference: str
    flags: list[FlagView] = Field(description="Each recommended engine flag with its reason.")
    argv: list[str] = Field(description="The flags as `vllm serve` arguments.")
    best: CandidateView | None
    alternative: CandidateView | None
    alternative_why: str
    reasons: list[str] = Field(description="When nothing fits: why, and what would.")

    @classmethod
    def of(cls, rec: Recommendation) -> RecommendationView:
        argv: list[str] = []
        for f in rec.flags:
            if f.value != "(none)":
                argv += [f.flag, f.value]
        return cls(
            feasible=rec.feasible,
            model=rec.model,
            device=rec.device,
            devices_used=rec.devices_used,
            devices_available=rec.devices_available,
            target_context=rec.target_context,
            concurrency=rec.concurrency,
            preference=rec.preference,
            flags=[FlagView(flag=f.flag, value=f.value, reason=f.reason) for f in rec.flags],
            argv=argv,
            best=CandidateView.of(rec.best) if rec.best else None,
            alternative=CandidateView.of(rec.alternative) if rec.alternative else None,
            alternative_why=rec.alternative_why,
            reasons=list(rec.reasons),
        )


class PlacementModel(_Wire):
    model: str = Field(description=MODEL_DESCRIPTION)
    name: str | None = Field(None, description="Name in the plan (default: the model).")
    max_model_len: int = Field(8192, ge=1, description="Context per request.")
    concurrency: int = Field(1, ge=1, le=100_000, description="Requests of max_model_len served at once.")
    tensor_parallel_size: int | None = Field(
        None, ge=1, le=512, description="Fix the split (default: planner)."
    )
    kv_cache_dtype: str = Field("auto", description="KV-cache dtype.")
    quantization: str | None = Field(None, description="Quantization method, e.g. fp8.")


class PlanRequest(_Wire):
    models: list[PlacementModel] = Field(min_length=1, max_length=64, description="The models to place.")
    gpus: str | None = Field(None, description=GPUS_DESCRIPTION)


class DeviceView(_Wire):
    index: int
    name: str
    platform: str
    source: str = Field(description="nvml (a real GPU), declared (planning), or host (CPU backend RAM).")
    memory_total_bytes: int
    memory_free_bytes: int | None
    compute_capability: str | None
    bandwidth_gbs: float | None
    bf16_tflops: float | None
    nvlink_links: int | None

    @classmethod
    def of(cls, d: Device) -> DeviceView:
        cc = d.compute_capability
        return cls(
            index=d.index,
            name=d.name,
            platform=d.platform,
            source=d.source,
            memory_total_bytes=d.memory_total_bytes,
            memory_free_bytes=d.memory_free_bytes,
            compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
            bandwidth_gbs=d.bandwidth_gbs,
            bf16_tflops=d.bf16_tflops,
            nvlink_links=d.nvlink_links,
        )


class AssignmentView(_Wire):
    name: str
    model: str
    gpus: list[int]
    bytes_per_gpu: int
    config: dict[str, Any] = Field(description="Engine config to start it with (kv_cache_memory_bytes set).")
    kv_capacity_tokens: int
    weights_bytes: int


class FixView(_Wire):
    kind: str
    description: str
    target: str


class UnplacedView(_Wire):
    name: str
    model: str
    reason: str
    fixes: list[FixView]


def _fix(f: Fix) -> FixView:
    return FixView(kind=f.kind, description=f.description, target=f.target)


class PlacementView(_Wire):
    fits: bool
    devices: list[DeviceView]
    assignments: list[AssignmentView]
    unplaced: list[UnplacedView]
    changes: list[FixView] = Field(description="When something is unplaced: smallest changes that fit all.")
    free_after_bytes: list[int]

    @classmethod
    def of(cls, plan: PlacementPlan) -> PlacementView:
        return cls(
            fits=plan.fits,
            devices=[DeviceView.of(d) for d in plan.devices],
            assignments=[
                AssignmentView(
                    name=a.name,
                    model=a.model,
                    gpus=list(a.gpus),
                    bytes_per_gpu=a.bytes_per_gpu,
                    config=a.config.to_dict(),
                    kv_capacity_tokens=a.estimate.kv.tokens,
                    weights_bytes=a.estimate.weights_bytes,
                )
                for a in plan.assignments
            ],
            unplaced=[
                UnplacedView(name=u.name, model=u.model, reason=u.reason, fixes=[_fix(f) for f in u.fixes])
                for u in plan.unplaced
            ],
            changes=[_fix(f) for f in plan.changes],
            free_after_bytes=list(plan.free_after),
        )


class CheckFitRequest(_Wire):
    """An engine the model manager would start: does it fit beside what runs now?"""

    model: str = Field(description=MODEL_DESCRIPTION)
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    pipeline_parallel_size: int = Field(1, ge=1, le=64)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    kv_cache_memory_bytes: int | None = Field(None, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    dtype: str | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    enforce_eager: bool = False
    gpus: list[int] = Field(
        default_factory=list, description="GPU indices it would use (default 0..TP×PP-1)."
    )
    extra_flags: list[str] = Field(default_factory=list, description="e.g. ['--max-num-seqs', '8'].")
    concurrency: int = Field(1, ge=1, le=100_000, description="Requests of max_model_len it must hold.")


class RunningView(_Wire):
    name: str
    model: str
    gpus: list[int]


class FitView(_Wire):
    fits: bool
    message: str
    model: str
    devices: list[DeviceView]
    estimate: MemoryEstimateView
    running: list[RunningView]
    recommendation: RecommendationView | None


class TopologyView(_Wire):
    a: int
    b: int
    level: str


class InventoryView(_Wire):
    source: str = Field(description="nvml (real GPUs), declared (planning inventory), host (no GPU: RAM).")
    description: str
    devices: list[DeviceView]
    no_gpu_reason: str | None = Field(description="Why NVML found no GPU, when it found none.")
    driver_version: str | None
    topology: list[TopologyView]
    catalog: list[str] = Field(description="GPU names a planning inventory may use.")


class GpusQuery(_Wire):
    gpus: str | None = Field(None, description=GPUS_DESCRIPTION)


class CalibrationQuery(_Wire):
    model: str | None = Field(None, description="Only this model (path or HF id as it was started).")
    limit: int = Field(20, ge=1, le=1000, description="Newest entries to return.")


class CalibrationEntryView(_Wire):
    id: int
    at: float
    model: str
    vllm_version: str
    device: str
    platform: str
    config: dict[str, Any]
    predicted: dict[str, int]
    reported: dict[str, int | None]
    errors: dict[str, float | None] = Field(description="(predicted − reported) / reported, per component.")
    report: dict[str, Any] = Field(description="Everything parsed from the start log and cache_config_info.")


class CalibrationView(_Wire):
    entries: list[CalibrationEntryView]
    correction: CorrectionView | None = Field(description="What later estimates of `model` apply.")
