"""The constraints vLLM enforces on a model + engine config before it loads anything. Pure.

Each broken rule is an ``Issue``: what is wrong, and what to change. ``check_constraints`` also
returns notes for legal but notable choices (KV heads replicated over TP ranks, a float32
checkpoint downcast to 16 bits).
"""

from __future__ import annotations

from dataclasses import dataclass

from vllm_mcp.core.engine_config import ResolvedConfig
from vllm_mcp.core.gpu_catalog import Device
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.model_meta import normalize_dtype

__all__ = ["CPU_HEAD_SIZES", "Issue", "check_constraints", "valid_tensor_parallel_sizes"]

#: Head sizes the CPU attention backend compiles (FACTS.md).
CPU_HEAD_SIZES = frozenset({32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512})
#: vLLM pads the vocabulary to a multiple of this before splitting it over TP ranks.
VOCAB_PADDING = 64
#: Methods that only load checkpoints already stored in that format.
PREQUANTIZED_ONLY = frozenset(
    {"awq", "awq_marlin", "gptq", "gptq_marlin", "compressed-tensors", "gguf", "mxfp4"}
)


@dataclass(frozen=True)
class Issue:
    message: str  # what is wrong
    hint: str  # what to change


def _divisors(n: int, limit: int) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def valid_tensor_parallel_sizes(model: ModelDims, limit: int = 64) -> list[int]:
    """TP sizes that pass the head, KV-head and vocabulary rules, ascending."""
    out = []
    for tp in range(1, limit + 1):
        if _tp_issue(model, tp) is None:
            out.append(tp)
    return out


def _tp_issue(model: ModelDims, tp: int) -> Issue | None:
    ok = ", ".join(str(d) for d in _divisors(model.num_attention_heads, 64))
    if model.num_attention_heads % tp:
        return Issue(
            f"{model.num_attention_heads} attention heads are not divisible by tensor_parallel_size {tp}",
            f"use a tensor_parallel_size that divides {model.num_attention_heads}: {ok}",
        )
    kv = model.num_kv_heads
    if not model.is_mla and kv % tp and tp % kv:
        return Issue(
            f"{kv} KV heads cannot be split over tensor_parallel_size {tp} (one must divide the other)",
            f"use a tensor_parallel_size that divides {kv} or is a multiple of it",
        )
    padded = -(-model.vocab_size // VOCAB_PADDING) * VOCAB_PADDING
    if model.vocab_size and padded % tp:
        return Issue(
            f"the vocabulary ({model.vocab_size:,}, padded to {padded:,}) is not divisible by "
            f"tensor_parallel_size {tp}",
            "use a power-of-two tensor_parallel_size",
        )
    return None


def check_constraints(
    model: ModelDims, cfg: ResolvedConfig, device: Device
) -> tuple[tuple[Issue, ...], tuple[str, ...]]:
    """``(problems, notes)`` for running ``model`` with ``cfg`` on ``device``."""
    problems: list[Issue] = []
    notes: list[str] = []
    tp, pp = cfg.tensor_parallel_size, cfg.pipeline_parallel_size
    issue = _tp_issue(model, tp)
    if issue is not None:
        problems.append(issue)
    elif not model.is_mla and tp > model.num_kv_heads:
        kv = model.num_kv_heads
        notes.append(
            f"{kv} KV heads over {tp} TP ranks: each rank keeps 1 replicated KV head, "
            f"so KV memory per GPU stops shrinking past TP={kv}"
        )
    if pp > model.num_layers:
        problems.append(
            Issue(
                f"pipeline_parallel_size {pp} exceeds the {model.num_layers} layers",
                f"use at most {model.num_layers} pipeline stages",
            )
        )
    limit = model.max_position_embeddings
    if limit and cfg.max_model_len > limit:
        problems.append(
            Issue(
                f"max_model_len {cfg.max_model_len:,} exceeds the model's {limit:,} positions",
                f"use max_model_len ≤ {limit:,}",
            )
        )
    problems.extend(_quantization_issues(model, cfg, device))
    problems.extend(_device_issues(model, cfg, device))
    checkpoint = normalize_dtype(model.dtype)
    if not model.quantization and checkpoint != cfg.dtype:
        notes.append(f"the {checkpoint} checkpoint runs as {cfg.dtype}")
    if model.sliding_layer_count:
        notes.append(
            f"{model.sliding_layer_count} of {model.num_layers} layers use a {model.sliding_window:,}-token "
            "sliding window: they hold only the window per request"
        )
    return tuple(problems), tuple(notes)


def _quantization_issues(model: ModelDims, cfg: ResolvedConfig, device: Device) -> list[Issue]:
    method = cfg.quantization
    if method is None:
        return []
    if model.quantization:
        stored = model.quantization
        if method != stored and not method.startswith(stored) and not stored.startswith(method):
            return [
                Issue(
                    f"quantization {method} does not match the checkpoint's {stored}",
                    f"leave quantization out (vLLM reads {stored} from the model) or pick a {stored} model",
                )
            ]
        return []
    if method in PREQUANTIZED_ONLY:
        return [
            Issue(
                f"quantization {method} needs a checkpoint stored as {method}; {model.name} is not",
                "pick a pre-quantized variant of the model, or use quantization fp8 (quantizes at load)",
            )
        ]
    if method == "fp8" and not device.fp8_supported:
        return [
            Issue(
                f"fp8 quantization is not supported on {device.name}",
                "use a GPU with compute capability ≥ 8.0, or a pre-quantized AWQ/GPTQ model",
            )
        ]
    return []


def _device_issues(model: ModelDims, cfg: ResolvedConfig, device: Device) -> list[Issue]:
    out: list[Issue] = []
    if device.platform == "cpu" and not model.is_mla and model.head_dim not in CPU_HEAD_SIZES:
        out.append(
            Issue(
                f"head size {model.head_dim} is not supported by vLLM's CPU attention",
                f"CPU attention accepts head sizes {sorted(CPU_HEAD_SIZES)}; run it on a GPU",
            )
        )
    if cfg.dtype == "bfloat16" and not device.bf16_supported:
        out.append(
            Issue(
                f"{device.name} has no bfloat16 (compute capability {device.compute_capability})",
                "use dtype float16",
            )
        )
    if cfg.kv_cache_dtype.startswith("fp8") and not device.fp8_supported:
        out.append(
            Issue(
                f"kv_cache_dtype {cfg.kv_cache_dtype} is not supported on {device.name}",
                "leave kv_cache_dtype at auto",
            )
        )
    return out
