"""MCP server `vllm-resource-optimizer`: plan GPU memory before starting anything.

Every tool is a read-only call to the daemon's optimizer endpoints (``OptimizerApi``): estimate
one engine's memory per GPU, recommend flags for a target, place several models on the GPUs,
check a config against what runs now, list the GPUs (or say honestly that there are none), and
show how past estimates compared with what vLLM reported. The text of each reply is what Crush
shows the agent, so it carries the numbers and the next step; the structured part has it all.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from vllm_mcp.api.optimizer import (
    GPUS_DESCRIPTION,
    MODEL_DESCRIPTION,
    CalibrationView,
    CheckFitRequest,
    EstimateRequest,
    FitView,
    InventoryView,
    MemoryEstimateView,
    PlacementModel,
    PlacementView,
    PlanRequest,
    RecommendationView,
    RecommendRequest,
)
from vllm_mcp.client.optimizer_api import OptimizerApi
from vllm_mcp.mcp.base import Backend, Reply, Tools

SERVER_NAME = "vllm-resource-optimizer"
INSTRUCTIONS = (
    "Plans GPU memory for vLLM so an engine that cannot fit is never started. estimate-memory "
    "breaks one config down per GPU (weights, KV cache, activations, graphs) and says whether it "
    "fits; recommend-config picks the flags for a context and concurrency; plan-placement puts "
    "several models on the GPUs; check-fit tests a config against what runs now; list-gpus shows "
    "the hardware (or a declared plan when there is no GPU); get-calibration shows how estimates "
    "compared with what vLLM reported."
)
GIB = 1 << 30

Model = Annotated[str, Field(description=MODEL_DESCRIPTION, min_length=1)]
Gpus = Annotated[str | None, Field(description=GPUS_DESCRIPTION)]
Concurrency = Annotated[
    int, Field(description="Requests of the full context served at once.", ge=1, le=100_000)
]
Context = Annotated[
    int | None, Field(description="Tokens per request (max_model_len; default: the model's).", ge=1)
]
Tp = Annotated[int, Field(description="Tensor-parallel size: GPUs per pipeline stage.", ge=1, le=512)]
Pp = Annotated[int, Field(description="Pipeline-parallel size: stages.", ge=1, le=512)]
DType = Annotated[str, Field(description="Weights dtype: auto, bfloat16, float16, float32.")]
Quant = Annotated[str | None, Field(description="Quantization, e.g. fp8 (at load) or awq/gptq (stored).")]
KvDType = Annotated[str, Field(description="KV-cache dtype: auto (model dtype) or fp8.")]
Util = Annotated[
    float | None, Field(description="Fraction of each GPU vLLM may take (default 0.9).", gt=0, le=1)
]
KvBytes = Annotated[
    int | None,
    Field(description="Exact KV-cache bytes per GPU; use it to share a GPU (excludes the fraction).", ge=1),
]
Eager = Annotated[bool, Field(description="No CUDA graphs: less memory, slower decode.")]


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / GIB:.2f} GiB"


def estimate_text(e: MemoryEstimateView) -> str:
    c = e.config
    lines = [
        f"{e.model} on {e.gpus}× {e.device}: TP={c['tensor_parallel_size']} PP={c['pipeline_parallel_size']} "
        f"{c['dtype']}, KV {c['kv_cache_dtype']}, max_model_len {c['max_model_len']:,}",
        f"Per GPU: weights {gib(e.weights_bytes)}, activations {gib(e.activation_bytes)}, CUDA graphs "
        f"{gib(e.cuda_graph_bytes)}, overhead {gib(e.overhead_bytes)}, KV cache {gib(e.kv_cache_bytes)} "
        f"= {gib(e.total_bytes)} of {gib(e.limit_bytes)} allowed.",
        f"KV: {e.kv_bytes_per_token:,} B/token on this GPU ({e.model_kv_bytes_per_token:,} B/token for "
        f"the whole model at TP=1); capacity {e.kv_capacity_tokens:,} tokens = "
        f"{e.max_concurrency:.2f}× max_model_len.",
        ("FITS" if e.fits else "DOES NOT FIT") + f", margin {gib(e.margin_bytes)}.",
    ]
    lines += [f"- {p.message}. Next step: {p.hint}." for p in e.problems]
    lines += [f"Note: {n}." for n in e.notes]
    if e.calibration.samples:
        lines.append(f"Corrected from {e.calibration.samples} past start(s) of this model.")
    return "\n".join(lines)


def recommendation_text(r: RecommendationView, model: str | None = None) -> str:
    head = f"{r.model}: {r.concurrency} × {r.target_context:,} tokens, optimising {r.preference}"
    if not r.feasible:
        return "\n".join(
            [f"{head}: nothing fits on {r.devices_available}× {r.device}.", *(f"- {x}" for x in r.reasons)]
        )
    lines = [f"{head}, on {r.devices_used} of {r.devices_available}× {r.device}:"]
    lines += [f"  {f.flag} {f.value} — {f.reason}" for f in r.flags]
    lines.append(f"Command: vllm serve {model or r.model} {' '.join(r.argv)}")
    if r.alternative is not None:
        lines.append(f"Next best: {r.alternative_why}.")
    lines += [f"Note: {x}" for x in r.reasons]
    return "\n".join(lines)


def placement_text(p: PlacementView) -> str:
    lines = ["All models fit:" if p.fits else "Not everything fits:"]
    for a in p.assignments:
        lines.append(
            f"  {a.name}: GPU {','.join(map(str, a.gpus))}, {gib(a.bytes_per_gpu)} per GPU, "
            f"--tensor-parallel-size {a.config['tensor_parallel_size']} "
            f"--kv-cache-memory-bytes {a.config['kv_cache_memory_bytes']} "
            f"({a.kv_capacity_tokens:,} KV tokens)"
        )
    for u in p.unplaced:
        lines.append(f"  DOES NOT FIT {u.name}: {u.reason}")
        lines += [f"    fix: {f.description}" for f in u.fixes[:4]]
    if p.changes:
        lines.append("Smallest changes that make the whole set fit:")
        lines += [f"  - {f.description}" for f in p.changes[:5]]
    free = ", ".join(f"GPU {d.index}: {gib(f)}" for d, f in zip(p.devices, p.free_after_bytes, strict=True))
    lines.append(f"Free after placement: {free}.")
    return "\n".join(lines)


def inventory_text(inv: InventoryView) -> str:
    lines = []
    if inv.no_gpu_reason:
        lines.append(inv.no_gpu_reason + ".")
    lines.append(f"Planning on {inv.description} ({inv.source}).")
    for d in inv.devices:
        free = f", {gib(d.memory_free_bytes)} free" if d.memory_free_bytes is not None else ""
        cc = f", CC {d.compute_capability}" if d.compute_capability else ""
        bw = f", {d.bandwidth_gbs:g} GB/s" if d.bandwidth_gbs else ""
        lines.append(f"  #{d.index} {d.name}: {gib(d.memory_total_bytes)} total{free}{cc}{bw}")
    lines += [f"  GPU {t.a} <-> GPU {t.b}: {t.level}" for t in inv.topology]
    if inv.source == "host":
        lines.append("To plan for GPUs you do not have, pass gpus, e.g. '2xH100-80GB'.")
    return "\n".join(lines)


def calibration_text(c: CalibrationView) -> str:
    if not c.entries:
        return "No starts recorded yet: calibration fills in after the model manager starts an engine."
    lines = []
    for e in c.entries:
        err = e.errors.get("kv_tokens")
        err_text = "?" if err is None else f"{err * 100:+.1f}%"
        lines.append(
            f"#{e.id} {e.model} (vLLM {e.vllm_version}, {e.device}): KV tokens predicted "
            f"{e.predicted['kv_tokens']:,}, reported {e.reported['kv_tokens'] or 0:,} ({err_text})"
        )
    if c.correction is not None and c.correction.samples:
        k = c.correction
        lines.append(
            f"Later estimates apply: weights ×{k.weights:.3f}, graphs ×{k.graph:.3f}, "
            f"activations+overhead ×{k.residual:.3f}, fixed-pool KV tokens ×{k.kv_tokens:.3f}."
        )
    return "\n".join(lines)


def fit_text(f: FitView) -> str:
    lines = [f.message + "."]
    if f.running:
        lines.append(
            "Running now: "
            + ", ".join(f"{r.name} (GPU {','.join(map(str, r.gpus)) or '-'})" for r in f.running)
        )
    lines.append(estimate_text(f.estimate))
    if f.recommendation is not None:
        lines.append("What would fit instead:")
        lines.append(recommendation_text(f.recommendation, f.model))
    return "\n".join(lines)


def register(server: MCPServer, backend: Backend, *, server_name: str = SERVER_NAME) -> None:
    tools = Tools(server, server_name)

    def api() -> OptimizerApi:
        return OptimizerApi(backend.daemon)

    @tools.tool("estimate-memory", title="Estimate GPU memory", read_only=True)
    async def estimate_memory(
        model: Model,
        tensor_parallel_size: Tp = 1,
        pipeline_parallel_size: Pp = 1,
        max_model_len: Context = None,
        concurrency: Concurrency = 1,
        dtype: DType = "auto",
        quantization: Quant = None,
        kv_cache_dtype: KvDType = "auto",
        gpu_memory_utilization: Util = None,
        kv_cache_memory_bytes: KvBytes = None,
        enforce_eager: Eager = False,
        gpus: Gpus = None,
    ) -> Reply[MemoryEstimateView]:
        """Per-GPU memory of one vLLM engine config — weights, KV bytes per token, KV capacity in
        tokens and max concurrency, activations, CUDA graphs, overhead — and whether it fits, with
        the margin and what to change when it does not."""
        req = EstimateRequest(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            max_model_len=max_model_len,
            concurrency=concurrency,
            dtype=dtype,
            quantization=quantization,
            kv_cache_dtype=kv_cache_dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            kv_cache_memory_bytes=kv_cache_memory_bytes,
            enforce_eager=enforce_eager,
            gpus=gpus,
        )
        est = await api().estimate(req)
        return Reply(est, estimate_text(est))

    @tools.tool("recommend-config", title="Recommend engine flags", read_only=True)
    async def recommend_config(
        model: Model,
        target_context: Context = None,
        concurrency: Concurrency = 1,
        preference: Annotated[
            Literal["latency", "throughput"],
            Field(description="latency: fastest tokens for few users; throughput: most tokens/s overall."),
        ] = "latency",
        gpus: Gpus = None,
    ) -> Reply[RecommendationView]:
        """Engine flags (tensor/pipeline parallel, memory fraction or KV bytes, max model len, KV
        dtype, quantization, max-num-seqs) for a model, a target context and concurrency, each with
        its reason, plus the next-best alternative; or why nothing fits and what would."""
        req = RecommendRequest(
            model=model,
            target_context=target_context,
            concurrency=concurrency,
            preference=preference,
            gpus=gpus,
        )
        rec = await api().recommend(req)
        return Reply(rec, recommendation_text(rec, model))

    @tools.tool("plan-placement", title="Place several models on the GPUs", read_only=True)
    async def plan_placement(
        models: Annotated[
            list[PlacementModel],
            Field(description="The models to place, each with its context and concurrency.", min_length=1),
        ],
        gpus: Gpus = None,
    ) -> Reply[PlacementView]:
        """Assign several models to the GPUs so they run side by side (each sized with
        --kv-cache-memory-bytes, since an engine otherwise fills its whole memory fraction); says what
        does not fit, why, and the smallest change that would make it fit."""
        plan = await api().plan(PlanRequest(models=models, gpus=gpus))
        return Reply(plan, placement_text(plan))

    @tools.tool("check-fit", title="Check a config against what runs now", read_only=True)
    async def check_fit(
        model: Model,
        tensor_parallel_size: Tp = 1,
        pipeline_parallel_size: Pp = 1,
        max_model_len: Context = None,
        concurrency: Concurrency = 1,
        quantization: Quant = None,
        kv_cache_dtype: KvDType = "auto",
        gpu_memory_utilization: Util = None,
        kv_cache_memory_bytes: KvBytes = None,
        gpu_ids: Annotated[
            list[int], Field(description="GPU indices it would use (default 0..TP×PP-1).")
        ] = [],  # noqa: B006 - the SDK reads the default for the schema; never mutated
    ) -> Reply[FitView]:
        """Would this engine fit now, beside the engines already running? Uses free GPU memory
        (or the declared inventory minus running engines); when it would not, recommends flags."""
        req = CheckFitRequest(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            pipeline_parallel_size=pipeline_parallel_size,
            max_model_len=max_model_len,
            concurrency=concurrency,
            quantization=quantization,
            kv_cache_dtype=None if kv_cache_dtype == "auto" else kv_cache_dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            kv_cache_memory_bytes=kv_cache_memory_bytes,
            gpus=list(gpu_ids),
        )
        fit = await api().check_fit(req)
        return Reply(fit, fit_text(fit))

    @tools.tool("list-gpus", title="List GPUs", read_only=True)
    async def list_gpus(gpus: Gpus = None) -> Reply[InventoryView]:
        """The GPUs the optimizer plans for: NVML's (name, memory total/free, compute capability,
        NVLink/topology), else the declared planning inventory, else an honest 'no GPU' with the
        host's RAM (vLLM's CPU backend)."""
        inv = await api().gpus(gpus)
        return Reply(inv, inventory_text(inv))

    @tools.tool("get-calibration", title="Estimate vs reported history", read_only=True)
    async def get_calibration(
        model: Annotated[str | None, Field(description="Only this model, as it was started.")] = None,
        limit: Annotated[int, Field(description="Newest entries to return.", ge=1, le=1000)] = 20,
    ) -> Reply[CalibrationView]:
        """How past estimates compared with what vLLM reported at start (KV cache tokens, model
        loading GiB, graph memory), and the correction later estimates of that model apply."""
        view = await api().calibration(model, limit)
        return Reply(view, calibration_text(view))
