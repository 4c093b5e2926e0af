"""The memory estimator: what one engine needs on each of its GPUs, and whether it fits. Pure.

    est = estimate_memory(dims, EngineConfig(tensor_parallel_size=2), device)
    est.weights_bytes, est.kv_bytes_per_token, est.kv.tokens, est.fits, est.margin_bytes

Per GPU (the busiest rank of the busiest pipeline stage):

1. weights — exact checkpoint bytes (dtype-converted when the engine dtype differs, or the
   on-the-fly quantized size), layers split over PP stages, everything split over TP ranks;
   the token embedding sits on the first stage and the LM head on the last.
2. KV bytes per token — ``core.kv_cache`` (2 × layers × KV heads ÷ TP × head dim × bytes; MLA
   and sliding-window layers as vLLM groups them).
3. activation peak — what vLLM's profiling forward pass of ``max_num_batched_tokens`` tokens
   plus the sampler's logits take; a heuristic that calibration corrects.
4. CUDA graphs (0 with enforce-eager) and framework overhead (CUDA context, NCCL, allocator) —
   heuristics, corrected by calibration.
5. the KV pool — ``kv_cache_memory_bytes`` when given; else vLLM's ``total × utilization − (1..4)``.
6. fit — no broken constraint, the pool holds ``target_concurrency`` requests of
   ``max_model_len`` tokens, and the memory asked for stays inside the device's (free) memory
   minus ``safety_margin_bytes``. ``margin_bytes`` is the smaller headroom of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from vllm_mcp.core.engine_config import EngineConfig, ResolvedConfig, resolve
from vllm_mcp.core.gpu_catalog import Device, GiB, MiB
from vllm_mcp.core.kv_cache import KvCapacity, KvLayout, cdiv, kv_capacity, kv_heads_per_rank
from vllm_mcp.core.kv_cache import pool_bytes_for_tokens as _pool_for_tokens
from vllm_mcp.core.model_dims import DTYPE_BYTES, ModelDims
from vllm_mcp.core.model_meta import normalize_dtype
from vllm_mcp.core.vram_rules import Issue, check_constraints

__all__ = [
    "Correction",
    "Issue",
    "MemoryEstimate",
    "estimate_memory",
    "kv_layout",
    "model_kv_bytes_per_token",
    "weights_per_gpu",
]

#: Bytes per weight after on-the-fly quantization of an unquantized checkpoint (linear layers).
ONLINE_QUANT_BYTES: dict[str, float] = {"fp8": 1.0, "bitsandbytes": 0.53, "int8": 1.0}

GPU_OVERHEAD = 640 * MiB  # CUDA context + cuBLAS workspaces + allocator slack per process
MULTI_GPU_OVERHEAD = 320 * MiB  # NCCL buffers and custom all-reduce when TP×PP > 1
CPU_OVERHEAD = int(1.5 * GiB)  # three Python processes (API server, engine core, worker), FACTS.md
GRAPH_BASE = 256 * MiB
GRAPH_PER_LAYER = 8 * MiB


@dataclass(frozen=True)
class Correction:
    """Multiplicative corrections learnt from vLLM's own reports (``core.calibration``)."""

    weights: float = 1.0
    graph: float = 1.0
    residual: float = 1.0  # activation peak + framework overhead
    kv_tokens: float = 1.0  # only for a fixed KV pool (kv_cache_memory_bytes)
    samples: int = 0

    @property
    def is_identity(self) -> bool:
        return self.samples == 0


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU breakdown for one engine on one device type."""

    model: str
    device: str
    platform: str
    config: ResolvedConfig
    weights_bytes: int
    kv_bytes_per_token: int  # this rank, all its layers
    model_kv_bytes_per_token: int  # the whole model at TP=1, all layers (the published figure)
    activation_bytes: int
    cuda_graph_bytes: int
    overhead_bytes: int
    kv: KvCapacity
    total_bytes: int  # what the engine takes on this GPU
    limit_bytes: int  # what it may take: the device's (free) memory less the safety margin
    required_kv_bytes: int  # the pool the target (concurrency × max_model_len) needs
    fits: bool
    margin_bytes: int
    target_concurrency: int = 1
    problems: tuple[Issue, ...] = ()
    notes: tuple[str, ...] = ()
    correction: Correction = field(default_factory=Correction)

    @property
    def non_kv_bytes(self) -> int:
        return self.weights_bytes + self.activation_bytes + self.cuda_graph_bytes + self.overhead_bytes

    @property
    def gpus(self) -> int:
        return self.config.tensor_parallel_size * self.config.pipeline_parallel_size


def model_kv_bytes_per_token(model: ModelDims, kv_dtype_bytes: float) -> int:
    """KV bytes per token of the whole model (TP=1, every layer, no grouping)."""
    if model.is_mla:
        per_layer = model.mla_latent_dim * kv_dtype_bytes
    else:
        per_layer = 2 * model.num_kv_heads * model.head_dim * kv_dtype_bytes
    return math.ceil(model.num_layers * per_layer)


def kv_layout(model: ModelDims, cfg: ResolvedConfig) -> KvLayout:
    """The KV layout of the busiest rank (most layers on the busiest pipeline stage)."""
    if model.is_mla:  # the latent is not split over TP ranks: every rank keeps all of it
        per_token = math.ceil(model.mla_latent_dim * cfg.kv_cache_dtype_bytes)
    else:
        heads = kv_heads_per_rank(model.num_kv_heads, cfg.tensor_parallel_size)
        per_token = math.ceil(2 * heads * model.head_dim * cfg.kv_cache_dtype_bytes)
    stage_layers = cdiv(model.num_layers, cfg.pipeline_parallel_size)
    sliding = model.sliding_layer_count
    stage_sliding = min(stage_layers, round(sliding * stage_layers / model.num_layers))
    return KvLayout(
        page_bytes_per_token=per_token,
        full_layers=stage_layers - stage_sliding,
        sliding_layers=stage_sliding,
        sliding_window=model.sliding_window if stage_sliding else None,
        block_size=cfg.block_size,
    )


def weights_per_gpu(model: ModelDims, cfg: ResolvedConfig) -> int:
    """Weight bytes on the busiest GPU (rule 1 of the module docstring)."""
    rt_bytes = DTYPE_BYTES.get(cfg.dtype, 2)
    embed_params = min(model.embedding_param_count, model.param_count or model.embedding_param_count)
    if model.quantization:  # stored quantized: the files are what lands in memory
        total = model.checkpoint_bytes
        embed = min(total, int(embed_params * rt_bytes))
    elif cfg.quantization in ONLINE_QUANT_BYTES:
        embed = int(embed_params * rt_bytes)
        linear = max(model.param_count - embed_params, 0)
        total = embed + int(linear * ONLINE_QUANT_BYTES[cfg.quantization])
    else:
        params = model.param_count or int(
            model.checkpoint_bytes / DTYPE_BYTES.get(normalize_dtype(model.dtype), 2)
        )
        total = int(params * rt_bytes)
        embed = int(embed_params * rt_bytes)
    tables = 1 if model.tie_word_embeddings else 2
    one_table = embed // tables
    layers = max(total - embed, 0)
    pp, tp = cfg.pipeline_parallel_size, cfg.tensor_parallel_size
    # PP: the first stage holds the embedding, the last the LM head (a copy when tied).
    stage = total if pp == 1 else layers * cdiv(model.num_layers, pp) // model.num_layers + one_table
    return cdiv(stage, tp)


def _activation_bytes(model: ModelDims, cfg: ResolvedConfig) -> int:
    """Peak of vLLM's profiling run: one batch of max_num_batched_tokens, plus sampler logits."""
    rt = DTYPE_BYTES.get(cfg.dtype, 2)
    tp = cfg.tensor_parallel_size
    tokens = cfg.max_num_batched_tokens
    inter = model.intermediate_size or 4 * model.hidden_size
    qkv = (model.num_attention_heads + 2 * model.num_kv_heads) * model.head_dim
    mlp_peak = model.hidden_size + 3 * inter // tp
    attn_peak = model.hidden_size + qkv // tp
    hidden = tokens * (max(mlp_peak, attn_peak) + model.hidden_size) * rt
    logits = cfg.max_num_seqs * model.vocab_size * 4 * 2  # float32 logits + probabilities
    return int(hidden + logits)


def _graph_bytes(model: ModelDims, cfg: ResolvedConfig, device: Device) -> int:
    if cfg.enforce_eager or device.platform == "cpu":
        return 0
    return GRAPH_BASE + GRAPH_PER_LAYER * cdiv(model.num_layers, cfg.pipeline_parallel_size)


def _overhead_bytes(cfg: ResolvedConfig, device: Device) -> int:
    if device.platform == "cpu":
        return CPU_OVERHEAD
    multi = MULTI_GPU_OVERHEAD if cfg.tensor_parallel_size * cfg.pipeline_parallel_size > 1 else 0
    return GPU_OVERHEAD + multi


def estimate_memory(
    model: ModelDims,
    config: EngineConfig,
    device: Device,
    *,
    target_concurrency: int = 1,
    safety_margin_bytes: int = 0,
    correction: Correction | None = None,
) -> MemoryEstimate:
    """The per-GPU breakdown of ``model`` run with ``config`` on ``device`` (see module doc)."""
    cfg = resolve(model, config, device)
    corr = correction or Correction()
    problems, notes = check_constraints(model, cfg, device)
    weights = int(weights_per_gpu(model, cfg) * corr.weights)
    activation = int(_activation_bytes(model, cfg) * corr.residual)
    graph = int(_graph_bytes(model, cfg, device) * corr.graph)
    overhead = int(_overhead_bytes(cfg, device) * corr.residual)
    non_kv = weights + activation + graph + overhead
    layout = kv_layout(model, cfg)
    available = device.available_bytes
    limit = available - safety_margin_bytes
    if cfg.kv_cache_memory_bytes is not None:
        pool = cfg.kv_cache_memory_bytes
        total = non_kv + pool
        memory_headroom = limit - total
    else:
        assert cfg.gpu_memory_utilization is not None
        requested = math.ceil(device.memory_total_bytes * cfg.gpu_memory_utilization)
        pool = requested - non_kv
        total = requested
        memory_headroom = limit - requested
        if device.memory_free_bytes is not None and requested > device.memory_free_bytes:
            problems += (
                Issue(
                    f"gpu_memory_utilization {cfg.gpu_memory_utilization} asks for "
                    f"{requested / GiB:.2f} GiB but only {device.memory_free_bytes / GiB:.2f} GiB "
                    f"is free on {device.name} #{device.index}",
                    "lower gpu_memory_utilization, or give kv_cache_memory_bytes to share the GPU",
                ),
            )
    kv = kv_capacity(layout, pool, cfg.max_model_len, cfg.in_flight_tokens)
    if corr.kv_tokens != 1.0 and cfg.kv_cache_memory_bytes is not None:
        kv = replace(
            kv, tokens=int(kv.tokens * corr.kv_tokens), max_concurrency=kv.max_concurrency * corr.kv_tokens
        )
    target = max(1, target_concurrency)
    required = _pool_for_tokens(layout, target * cfg.max_model_len, cfg.max_model_len, cfg.in_flight_tokens)
    kv_headroom = pool - required
    problems += _fit_problems(model, cfg, device, kv, required, pool, memory_headroom, target)
    margin = min(memory_headroom, kv_headroom)
    if device.memory_free_bytes is None and cfg.kv_cache_memory_bytes is None:
        notes += ("planning device: vLLM takes its whole memory fraction, so no other engine fits beside it",)
    return MemoryEstimate(
        model=model.name,
        device=device.name,
        platform=device.platform,
        config=cfg,
        weights_bytes=weights,
        kv_bytes_per_token=layout.bytes_per_token,
        model_kv_bytes_per_token=model_kv_bytes_per_token(model, cfg.kv_cache_dtype_bytes),
        activation_bytes=activation,
        cuda_graph_bytes=graph,
        overhead_bytes=overhead,
        kv=kv,
        total_bytes=total,
        limit_bytes=limit,
        required_kv_bytes=required,
        fits=not problems,
        margin_bytes=margin,
        target_concurrency=target,
        problems=problems,
        notes=notes,
        correction=corr,
    )


def _fit_problems(
    model: ModelDims,
    cfg: ResolvedConfig,
    device: Device,
    kv: KvCapacity,
    required: int,
    pool: int,
    memory_headroom: int,
    target: int,
) -> tuple[Issue, ...]:
    out: list[Issue] = []
    if pool <= 0:
        out.append(
            Issue(
                f"nothing is left for the KV cache: weights and runtime take "
                f"{(kv.pool_bytes - pool) / GiB:.2f} GiB more than the memory vLLM may use",
                "use more GPUs (tensor_parallel_size), a quantized model, or raise gpu_memory_utilization",
            )
        )
    elif kv.max_concurrency < target:
        want = f"{target} request(s) of {cfg.max_model_len:,} tokens"
        out.append(
            Issue(
                f"the KV cache ({pool / GiB:.2f} GiB, {kv.tokens:,} tokens) cannot hold {want}; "
                f"that needs {required / GiB:.2f} GiB",
                "lower max_model_len or the concurrency, use kv_cache_dtype fp8, or add GPUs",
            )
        )
    if memory_headroom < 0:
        out.append(
            Issue(
                f"{model.name} needs {(memory_headroom * -1) / GiB:.2f} GiB more than "
                f"{device.name} #{device.index} can give",
                "lower kv_cache_memory_bytes or max_model_len, quantize, or spread over more GPUs",
            )
        )
    return tuple(out)
