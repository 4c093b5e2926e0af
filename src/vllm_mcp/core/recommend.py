"""The recommender: engine flags for a model, a set of GPUs, a target context and concurrency. Pure.

    rec = recommend(dims, devices, target_context=32768, concurrency=8, preference="latency")
    rec.flags      # (flag, value, reason) for TP/PP, memory knob, max len, KV dtype, quantization, seqs
    rec.alternative

Decision, in order:

1. Candidates: every valid tensor-parallel size on the largest group of identical devices, with
   pipeline stages to fill the group when TP alone is not enough; weights as stored or FP8; KV
   cache at the model dtype or FP8 (FP8 only where the device supports it).
2. A candidate is feasible when the estimator says it fits ``concurrency`` requests of
   ``target_context`` tokens.
3. Fewer precision cuts win first (no quantization, then FP8 KV, then FP8 weights): quality is
   never traded unless the target needs it.
4. Then the preference, on a memory-bandwidth model of a decode step (each GPU reads its
   weights and its share of the batch's KV; each extra TP rank costs an all-reduce; PP stages
   run one after another): ``latency`` — the shortest step at the target concurrency;
   ``throughput`` — the most tokens/s over every replica the GPUs hold, each batching as many
   requests (of a quarter of the context) as its KV cache allows, up to 256.
5. The alternative is the best feasible candidate of a different shape; with nothing feasible,
   the reasons say what would fit (shorter context, fewer sequences, more GPUs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.gpu_catalog import Device, GiB
from vllm_mcp.core.kv_cache import pool_bytes_for_tokens
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.vram import Correction, MemoryEstimate, estimate_memory, kv_layout
from vllm_mcp.core.vram_rules import valid_tensor_parallel_sizes
from vllm_mcp.errors import InvalidRequest

__all__ = ["Candidate", "FlagChoice", "Preference", "Recommendation", "largest_fitting", "recommend"]

Preference = Literal["latency", "throughput"]
TP_ALLREDUCE_COST = 0.08  # relative decode-step cost of each extra TP rank (all-reduce per layer)
THROUGHPUT_BATCH_CAP = 256  # past this, decode turns compute-bound and bigger batches stop paying


@dataclass(frozen=True)
class FlagChoice:
    flag: str
    value: str
    reason: str


@dataclass(frozen=True)
class Candidate:
    config: EngineConfig
    estimate: MemoryEstimate
    quality_cuts: int  # 0: as stored; 1: FP8 KV; 2: FP8 weights; 3: both

    @property
    def gpus(self) -> int:
        return self.config.world_size

    @property
    def summary(self) -> str:
        c = self.config
        parts = [f"TP={c.tensor_parallel_size}"]
        if c.pipeline_parallel_size > 1:
            parts.append(f"PP={c.pipeline_parallel_size}")
        parts.append(f"weights {c.quantization or self.estimate.config.dtype}")
        parts.append(f"KV {c.kv_cache_dtype if c.kv_cache_dtype != 'auto' else self.estimate.config.dtype}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Recommendation:
    model: str
    device: str
    devices_used: int
    devices_available: int
    target_context: int
    concurrency: int
    preference: Preference
    best: Candidate | None
    flags: tuple[FlagChoice, ...]
    alternative: Candidate | None
    alternative_why: str
    reasons: tuple[str, ...]  # why nothing fits and what would, when best is None

    @property
    def feasible(self) -> bool:
        return self.best is not None


def _group(devices: Sequence[Device]) -> list[Device]:
    """The largest group of identical devices (TP needs equal ranks), in index order."""
    if not devices:
        raise InvalidRequest("no devices to plan for", hint="declare some, e.g. 2xH100-80GB", field="gpus")
    name, _ = Counter(d.name for d in devices).most_common(1)[0]
    return [d for d in devices if d.name == name]


def _shapes(model: ModelDims, n: int, device: Device) -> list[tuple[int, int]]:
    if device.platform == "cpu":
        return [(1, 1)]
    tps = valid_tensor_parallel_sizes(model, n)
    shapes = [(tp, 1) for tp in tps]
    for tp in tps:
        for pp in (2, 4, 8, 16):
            if tp * pp <= n and pp <= model.num_layers:
                shapes.append((tp, pp))
    return shapes


def _config(
    model: ModelDims,
    device: Device,
    shape: tuple[int, int],
    quant: str | None,
    kv: str,
    context: int,
    concurrency: int,
    utilization: float,
) -> EngineConfig:
    tp, pp = shape
    base = EngineConfig(
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        quantization=quant,
        kv_cache_dtype=kv,
        max_model_len=context,
    )
    if device.platform != "cpu":
        return base.with_(gpu_memory_utilization=utilization)
    # vLLM's CPU backend wants an explicit KV size: exactly the target, in whole blocks.
    probe = estimate_memory(model, base.with_(kv_cache_memory_bytes=1), device)
    layout = kv_layout(model, probe.config)
    pool = pool_bytes_for_tokens(layout, concurrency * context, context, probe.config.in_flight_tokens)
    return base.with_(kv_cache_memory_bytes=max(pool, layout.bytes_per_block, 1))


def _candidates(
    model: ModelDims,
    group: list[Device],
    context: int,
    concurrency: int,
    utilization: float,
    safety: int,
    correction: Correction | None,
) -> list[Candidate]:
    device = min(group, key=lambda d: d.available_bytes)  # plan on the tightest rank
    quants: list[str | None] = [None]
    kvs = ["auto"]
    if device.fp8_supported:
        kvs.append("fp8")
        if not model.quantization:
            quants.append("fp8")
    out = []
    for shape in _shapes(model, len(group), device):
        for quant in quants:
            for kv in kvs:
                cfg = _config(model, device, shape, quant, kv, context, concurrency, utilization)
                est = estimate_memory(
                    model,
                    cfg,
                    device,
                    target_concurrency=concurrency,
                    safety_margin_bytes=safety,
                    correction=correction,
                )
                cuts = (kv != "auto") + 2 * (quant is not None)
                out.append(Candidate(cfg, est, cuts))
    return out


def _step_seconds(c: Candidate, device: Device, batch: float, avg_len: int) -> float:
    """One decode step, memory-bound: each GPU reads its weights and the batch's KV once; PP
    stages run one after another; each extra TP rank adds an all-reduce per layer."""
    bw = (device.bandwidth_gbs or 1000.0) * 1e9
    tp, pp = c.config.tensor_parallel_size, c.config.pipeline_parallel_size
    est = c.estimate
    read = est.weights_bytes * pp + batch * avg_len * est.kv_bytes_per_token
    return read / bw * (1 + TP_ALLREDUCE_COST * (tp - 1))


def _latency_key(c: Candidate, device: Device, concurrency: int) -> tuple[float, ...]:
    avg_len = max(1, c.estimate.config.max_model_len // 2)
    return (c.quality_cuts, _step_seconds(c, device, concurrency, avg_len), c.gpus)


def _throughput_key(c: Candidate, device: Device, n: int) -> tuple[float, ...]:
    """Decode tokens/s over every replica the group holds, at the batch the KV cache allows."""
    avg_len = max(1, c.estimate.config.max_model_len // 4)
    batch = min(c.estimate.kv.tokens / avg_len, THROUGHPUT_BATCH_CAP)
    replicas = max(1, n // c.gpus)
    rate = replicas * batch / _step_seconds(c, device, batch, avg_len) if batch > 0 else 0.0
    return (c.quality_cuts, -rate, c.gpus)


def recommend(
    model: ModelDims,
    devices: Sequence[Device],
    *,
    target_context: int | None = None,
    concurrency: int = 1,
    preference: Preference = "latency",
    utilization: float = 0.9,
    safety_margin_bytes: int = 0,
    correction: Correction | None = None,
) -> Recommendation:
    """The best engine flags for ``model`` on ``devices`` (see the module docstring)."""
    if concurrency < 1:
        raise InvalidRequest("concurrency must be ≥ 1", field="concurrency")
    if preference not in ("latency", "throughput"):
        raise InvalidRequest(
            f"unknown preference {preference!r}", hint="latency or throughput", field="preference"
        )
    group = _group(devices)
    device = group[0]
    limit = model.max_position_embeddings
    context = target_context or min(limit or 8192, 8192)
    reasons: list[str] = []
    if limit and context > limit:
        reasons.append(
            f"target context {context:,} exceeds the model's {limit:,} positions; planned {limit:,}"
        )
        context = limit
    cands = _candidates(model, group, context, concurrency, utilization, safety_margin_bytes, correction)
    feasible = [c for c in cands if c.estimate.fits]

    def key(c: Candidate) -> tuple[float, ...]:
        if preference == "latency":
            return _latency_key(c, device, concurrency)
        return _throughput_key(c, device, len(group))

    feasible.sort(key=key)
    if not feasible:
        reasons.extend(
            _what_would_fit(model, group, cands, context, concurrency, utilization, safety_margin_bytes)
        )
        return Recommendation(
            model.name,
            device.name,
            0,
            len(group),
            context,
            concurrency,
            preference,
            None,
            (),
            None,
            "",
            tuple(reasons),
        )
    best = feasible[0]
    alt = next((c for c in feasible[1:] if c.summary != best.summary), None)
    why = _why_second(best, alt, preference) if alt else ""
    flags = _flags(best, concurrency, preference, feasible)
    return Recommendation(
        model.name,
        device.name,
        best.gpus,
        len(group),
        context,
        concurrency,
        preference,
        best,
        flags,
        alt,
        why,
        tuple(reasons),
    )


def _why_second(best: Candidate, alt: Candidate, preference: Preference) -> str:
    if alt.quality_cuts > best.quality_cuts:
        return f"{alt.summary}: trades precision the target does not need"
    if preference == "latency":
        return f"{alt.summary}: reads more weight bytes per token on each GPU, so each token is slower"
    return f"{alt.summary}: serves fewer tokens per second over the replicas the GPUs hold"


def _max_seqs(best: Candidate, concurrency: int, preference: Preference) -> tuple[int, str]:
    est = best.estimate
    if preference == "latency":
        return concurrency, "batch no more than the target concurrency: smaller batches decode faster"
    average = max(1, est.config.max_model_len // 4)
    room = int(est.kv.tokens // average)
    seqs = max(concurrency, min(1024, room))
    return seqs, f"the KV cache holds ~{room:,} requests averaging a quarter of the context"


def _flags(
    best: Candidate, concurrency: int, preference: Preference, feasible: list[Candidate]
) -> tuple[FlagChoice, ...]:
    est, cfg = best.estimate, best.config
    gib = GiB
    weights = f"{est.weights_bytes / gib:.1f} GiB"
    fewer = [c for c in feasible if c.gpus < best.gpus and c.quality_cuts == best.quality_cuts]
    if cfg.tensor_parallel_size == 1 and cfg.pipeline_parallel_size == 1:
        tp_why = f"one GPU holds the weights ({weights}) and the KV cache the target needs"
    elif fewer and preference == "latency":
        tp_why = (
            f"{weights} of weights per GPU: splitting them over "
            f"{cfg.tensor_parallel_size} GPUs cuts the bytes each reads per token"
        )
    else:
        tp_why = f"the smallest split whose GPUs hold the weights ({weights} each) and the KV cache"
    flags = [FlagChoice("--tensor-parallel-size", str(cfg.tensor_parallel_size), tp_why)]
    if cfg.pipeline_parallel_size > 1:
        flags.append(
            FlagChoice(
                "--pipeline-parallel-size",
                str(cfg.pipeline_parallel_size),
                "the valid tensor-parallel sizes alone cannot hold the model: layers are split into stages",
            )
        )
    if cfg.kv_cache_memory_bytes is not None:
        flags.append(
            FlagChoice(
                "--kv-cache-memory-bytes",
                str(cfg.kv_cache_memory_bytes),
                f"exactly {est.kv.tokens:,} tokens of KV cache ({concurrency} × {cfg.max_model_len:,})",
            )
        )
    else:
        flags.append(
            FlagChoice(
                "--gpu-memory-utilization",
                str(cfg.gpu_memory_utilization),
                f"leaves {est.kv.pool_bytes / gib:.1f} GiB of KV cache per GPU ({est.kv.tokens:,} tokens, "
                f"{est.kv.max_concurrency:.1f}× the context)",
            )
        )
    flags.append(FlagChoice("--max-model-len", str(cfg.max_model_len), "the target context"))
    per_tok = est.kv_bytes_per_token
    if cfg.kv_cache_dtype == "auto":
        kv_why = f"{est.config.dtype} KV keeps full precision; {per_tok:,} B per token per GPU is enough"
    else:
        kv_why = f"FP8 halves the KV cache to {per_tok:,} B per token per GPU, which the target needs"
    flags.append(FlagChoice("--kv-cache-dtype", cfg.kv_cache_dtype, kv_why))
    if cfg.quantization:
        quant_why = f"FP8 weights ({est.weights_bytes / gib:.1f} GiB per GPU) are what make the target fit"
    else:
        quant_why = "none: the weights fit as stored"
    flags.append(FlagChoice("--quantization", cfg.quantization or "(none)", quant_why))
    seqs, seqs_why = _max_seqs(best, concurrency, preference)
    flags.append(FlagChoice("--max-num-seqs", str(seqs), seqs_why))
    return tuple(flags)


def _what_would_fit(
    model: ModelDims,
    group: list[Device],
    cands: list[Candidate],
    context: int,
    concurrency: int,
    utilization: float,
    safety: int,
) -> list[str]:
    """Reasons for "nothing fits", each with a change that would fit."""
    closest = max(cands, key=lambda c: c.estimate.margin_bytes) if cands else None
    out: list[str] = []
    if closest is not None:
        first = closest.estimate.problems[0] if closest.estimate.problems else None
        if first is not None:
            out.append(f"closest ({closest.summary}): {first.message}")
    device = group[0]

    def fits(ctx: int, conc: int, devices: list[Device]) -> bool:
        found = _candidates(model, devices, ctx, conc, utilization, safety, None)
        return any(c.estimate.fits for c in found)

    ctx = largest_fitting(lambda x: fits(x, concurrency, group), 256, context - 1)
    if ctx is not None:
        out.append(f"a context of {ctx:,} tokens would fit on {len(group)}× {device.name}")
    if concurrency > 1:
        conc = largest_fitting(lambda x: fits(context, x, group), 1, concurrency - 1)
        if conc is not None:
            out.append(f"{conc} concurrent request(s) of {context:,} tokens would fit")
    if device.platform != "cpu":
        for n in (2, 4, 8, 16, 32, 64):
            if n > len(group) and fits(context, concurrency, [device.with_index(i) for i in range(n)]):
                out.append(f"{n}× {device.name} would fit the target")
                break
    return out


def largest_fitting(fits: Callable[[int], bool], low: int, high: int) -> int | None:
    """The largest x in [low, high] with ``fits(x)``, assuming fits is monotone (bisection)."""
    if high < low or not fits(low):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low
