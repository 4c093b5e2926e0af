"""What vLLM can do with a discovered model: supported? which parsers? which GPUs, what context?

1. Support: the architecture against the installed vLLM's registry (``registry.Registry``), or
   the bundled list, labelled as such.
2. Parsers: ``--tool-call-parser``/``--reasoning-parser`` from the chat template's syntax, only
   names the installed vLLM registers (``templates.suggest``).
3. Fit, per device: the resource optimizer's estimator (``core.vram.estimate_memory``: weights,
   activation peak, CUDA graphs, overhead and vLLM's KV-block arithmetic) at the model's full
   context; when that does not fit but some KV cache is left, the longest context that does.
   When the files lack a dimension the estimator needs, a clearly labelled weights-only check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from vllm_mcp.api.discovery import Assessment, DiscoveredModel, GpuFit
from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.gpu_catalog import Device, GiB
from vllm_mcp.core.model_dims import dims_from_meta
from vllm_mcp.core.model_meta import ModelMeta
from vllm_mcp.core.vram import MemoryEstimate, estimate_memory
from vllm_mcp.discovery.registry import Registry
from vllm_mcp.discovery.templates import suggest
from vllm_mcp.errors import InvalidRequest

ESTIMATOR = "resource-optimizer estimate: weights, activation peak, CUDA graphs, overhead and KV cache"
WEIGHTS_ONLY = (
    "weights-only check (the estimator cannot size this model: {why}): weights against usable "
    "memory; activations, CUDA graphs and runtime overhead are NOT counted"
)
CONTEXT_STEP = 256  # a reduced context is offered in whole multiples of this
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # --max-lora-rank choices


def declared_gpus(sizes_gib: Sequence[float]) -> list[Device]:
    """Hypothetical GPUs of the given sizes (``gpu_memory_gib``)."""
    return [
        Device(index=i, name=f"{gib:g} GiB GPU", memory_total_bytes=int(gib * GiB), source="declared")
        for i, gib in enumerate(sizes_gib)
    ]


def _label(device: Device, tp: int = 1) -> str:
    where = "host memory" if device.platform == "cpu" else f"GPU {device.index}"
    head = f"{tp} x {device.name} (tensor parallel {tp})" if tp > 1 else f"{where}: {device.name}"
    return head + (" [declared]" if device.source == "declared" else "")


def _estimate(
    meta: ModelMeta, name: str, device: Device, util: float, tp: int, max_len: int | None
) -> MemoryEstimate:
    dims = dims_from_meta(meta, name=name)
    config = EngineConfig(tensor_parallel_size=tp, gpu_memory_utilization=util, max_model_len=max_len)
    return estimate_memory(dims, config, device)


def _fit(meta: ModelMeta, name: str, device: Device, util: float, tp: int = 1) -> GpuFit:
    full = _estimate(meta, name, device, util, tp, None)
    ctx = full.config.max_model_len
    base = {"gpu": _label(device, tp), "memory_bytes": device.memory_total_bytes * tp}
    usable = int(device.memory_total_bytes * util) * tp
    if full.fits:
        note = f"{full.kv.tokens:,} KV-cache tokens: {full.kv.max_concurrency:.1f} requests of full length"
        return GpuFit(**base, usable_bytes=usable, fits=True, max_context_tokens=ctx, note=note)
    room = full.kv.tokens // CONTEXT_STEP * CONTEXT_STEP
    if full.kv.pool_bytes > 0 and room >= CONTEXT_STEP:
        reduced = _estimate(meta, name, device, util, tp, min(room, ctx))
        if reduced.fits:
            note = f"only with max_model_len ≤ {min(room, ctx):,} (the model allows {ctx:,})"
            return GpuFit(
                **base, usable_bytes=usable, fits=True, max_context_tokens=min(room, ctx), note=note
            )
    why = full.problems[0].message if full.problems else "does not fit"
    return GpuFit(**base, usable_bytes=usable, fits=False, note=why)


def _weights_only(meta: ModelMeta | None, device: Device, util: float) -> GpuFit:
    usable = int(device.memory_total_bytes * util)
    weights = meta.weight_bytes if meta else None
    base = {"gpu": _label(device), "memory_bytes": device.memory_total_bytes, "usable_bytes": usable}
    if weights is None:
        return GpuFit(**base, fits=False, note="weight size unknown (no readable weight headers)")
    left = usable - weights
    note = f"weights {weights / GiB:.2f} GiB of {usable / GiB:.2f} GiB usable; {left / GiB:.2f} GiB left"
    return GpuFit(**base, fits=left > 0, note=note)


def _tp_candidate(devices: Sequence[Device]) -> int:
    same = [d for d in devices if d.name == devices[0].name] if devices else []
    return 2 ** int(math.log2(len(same))) if len(same) > 1 else 1


def fits(model: DiscoveredModel, devices: Sequence[Device], util: float) -> tuple[str, list[GpuFit]]:
    """(method, per-device fits); one more row for tensor parallel when no single device fits."""
    meta = model.meta
    try:
        if meta is None:
            raise InvalidRequest("no config.json metadata")
        dims_from_meta(meta, name=model.id)
    except InvalidRequest as exc:
        method = WEIGHTS_ONLY.format(why=exc.message)
        return method, [_weights_only(meta, d, util) for d in devices]
    rows = [_fit(meta, model.id, d, util) for d in devices]
    tp = _tp_candidate(devices)
    if tp > 1 and not any(r.fits for r in rows):
        rows.append(_fit(meta, model.id, devices[0], util, tp))
    return ESTIMATOR, rows


def _lora_flags(model: DiscoveredModel) -> list[str]:
    rank = model.lora.rank if model.lora else None
    flags = ["--enable-lora"]
    if rank:
        flags += ["--max-lora-rank", str(next((r for r in LORA_RANKS if r >= rank), rank))]
    return flags


def assess(
    model: DiscoveredModel,
    registry: Registry,
    devices: Sequence[Device],
    *,
    utilization: float,
    device_note: str | None = None,
) -> Assessment:
    meta = model.meta
    notes: list[str] = []
    if model.status != "ok":
        notes.append(f"the files are {model.status}: " + "; ".join(model.problems))
    tool, reasoning = suggest(model.chat_template, registry.tool_parsers, registry.reasoning_parsers)
    flags: list[str] = []
    if tool:
        flags += ["--enable-auto-tool-choice", "--tool-call-parser", tool]
    if reasoning:
        flags += ["--reasoning-parser", reasoning]
    if model.kind == "lora":
        base = model.lora.base_model if model.lora else None
        notes.append(
            f"a LoRA adapter: serve its base model ({base or 'unknown'}) with these flags and load it"
        )
        return Assessment(
            model=model.id,
            status=model.status,
            registry=registry.check(None),
            suggested_flags=_lora_flags(model),
            fit_method="adapters share the base model's memory (a few MB each)",
            notes=notes,
        )
    if model.kind == "gguf":
        notes.append(
            "GGUF: pass --tokenizer with the original HF model (converting the GGUF tokenizer is slow)"
        )
    method, rows = fits(model, devices, utilization) if model.status == "ok" else ("not checked", [])
    if device_note:
        notes.append(device_note)
    return Assessment(
        model=model.id,
        status=model.status,
        registry=registry.check(meta.architecture if meta else None),
        tool_call_parser=tool,
        reasoning_parser=reasoning,
        suggested_flags=flags,
        fit_method=method,
        fits=rows,
        notes=notes,
    )
