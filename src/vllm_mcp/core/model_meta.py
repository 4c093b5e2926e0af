"""What a model *is*, read from its files: ``ModelMeta`` and ``WeightsInfo``. Pure, no I/O.

The discovery scanner fills these from ``config.json`` (and GGUF metadata turned into the same
shape) plus the exact totals of the weight file headers; the resource optimizer reads them to
size memory. Both types are frozen and small on purpose: add a field only when a consumer needs
it, and keep every field optional (``None`` = "the files do not say"), because real configs
leave out whatever their architecture does not use.

    meta = model_meta_from_config(json.loads(config_text), weights)
    meta.num_kv_heads, meta.head_dim, meta.context_length, meta.weight_bytes

Conventions (the contract consumers rely on):

- ``param_count``/``weight_bytes`` come only from weight file headers (``WeightsInfo``), never
  from a formula. ``param_count`` counts stored elements: packed quantized tensors (AWQ/GPTQ
  int32 words holding 8 int4 values) count once per stored word, as the safetensors header says.
- ``head_dim`` is ``config.head_dim`` or ``hidden_size // num_attention_heads``; for MLA models it
  is the query/key head dim (``qk_nope_head_dim + qk_rope_head_dim``) and ``mla`` holds the ranks.
- ``context_length`` is what vLLM derives by default: ``max_position_embeddings`` scaled by the
  rope-scaling factor for the types that extend it (yarn from its original length; linear and
  dynamic from the maximum); llama3 and longrope configs already state the extended length.
- Multimodal configs that nest the language model under ``text_config`` are read through it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

__all__ = [
    "MlaDims",
    "ModelMeta",
    "MoeDims",
    "QuantInfo",
    "RopeScaling",
    "WeightsInfo",
    "kv_cache_bytes_per_token",
    "model_meta_from_config",
    "normalize_dtype",
    "quant_info_from_config",
]

_DTYPE_ALIASES = {
    "f64": "float64",
    "double": "float64",
    "f32": "float32",
    "float": "float32",
    "fp32": "float32",
    "bf16": "bfloat16",
    "f16": "float16",
    "half": "float16",
    "fp16": "float16",
    "f8_e4m3": "float8_e4m3",
    "f8_e4m3fn": "float8_e4m3",
    "float8_e4m3fn": "float8_e4m3",
    "f8_e5m2": "float8_e5m2",
    "i64": "int64",
    "i32": "int32",
    "i16": "int16",
    "i8": "int8",
    "u8": "uint8",
}


@overload
def normalize_dtype(name: str) -> str: ...
@overload
def normalize_dtype(name: None) -> None: ...
def normalize_dtype(name: str | None) -> str | None:
    """``"torch.bfloat16"``, ``"BF16"``, ``" half "`` → ``"bfloat16"``/``"float16"``; unknown names
    pass lowercased; ``None`` ("the files do not say") stays ``None``."""
    if name is None:
        return None
    key = name.strip().lower().removeprefix("torch.")
    return _DTYPE_ALIASES.get(key, key)


@dataclass(frozen=True)
class WeightsInfo:
    """Exact totals from the weight file headers (safetensors or GGUF); nothing estimated."""

    format: str  # "safetensors" | "gguf"
    param_count: int  # sum of prod(shape) over every tensor
    weight_bytes: int  # sum of the tensors' data sizes as the headers lay them out
    tensor_count: int
    file_count: int
    dtype_params: tuple[tuple[str, int], ...] = ()  # (normalised dtype, params), most params first

    @property
    def main_dtype(self) -> str | None:
        return self.dtype_params[0][0] if self.dtype_params else None


@dataclass(frozen=True)
class QuantInfo:
    """How the weights are quantized: ``method`` as vLLM's ``--quantization`` names it."""

    method: str  # awq, gptq, fp8, compressed-tensors, bitsandbytes, gguf, mxfp4, …
    bits: int | None = None
    group_size: int | None = None
    detail: str | None = None  # e.g. "Q4_K_M", "e4m3, dynamic activations, 128x128 blocks", "nf4"


@dataclass(frozen=True)
class RopeScaling:
    type: str
    factor: float | None = None
    original_max_position_embeddings: int | None = None


@dataclass(frozen=True)
class MlaDims:
    """Multi-head latent attention (DeepSeek-V2/V3 style): the KV cache holds one latent per token."""

    kv_lora_rank: int
    q_lora_rank: int | None
    qk_nope_head_dim: int | None
    qk_rope_head_dim: int
    v_head_dim: int | None


@dataclass(frozen=True)
class MoeDims:
    num_experts: int
    experts_per_token: int | None
    moe_intermediate_size: int | None
    shared_experts: int | None


@dataclass(frozen=True)
class ModelMeta:
    architecture: str | None  # architectures[0], e.g. "LlamaForCausalLM"
    model_type: str | None
    param_count: int | None
    weight_bytes: int | None
    dtype: str | None  # declared torch dtype, else the dominant dtype of the weights
    quantization: QuantInfo | None
    num_layers: int | None
    hidden_size: int | None
    intermediate_size: int | None
    num_attention_heads: int | None
    num_kv_heads: int | None
    head_dim: int | None
    vocab_size: int | None
    max_position_embeddings: int | None
    context_length: int | None
    rope_scaling: RopeScaling | None = None
    sliding_window: int | None = None
    mla: MlaDims | None = None
    moe: MoeDims | None = None
    tie_word_embeddings: bool | None = None


def _int(cfg: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    return None


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language-model part: top level, or ``text_config`` merged under it (multimodal)."""
    text = config.get("text_config") or config.get("llm_config")
    if isinstance(text, Mapping) and _int(config, "num_hidden_layers", "n_layer", "num_layers") is None:
        return {**config, **text}
    return config


def quant_info_from_config(config: Mapping[str, Any]) -> QuantInfo | None:
    """``quantization_config`` (or an older ``quantize_config``) → ``QuantInfo``."""
    q = config.get("quantization_config") or config.get("quantize_config")
    if not isinstance(q, Mapping):
        return None
    method = str(q.get("quant_method") or ("gptq" if "bits" in q else "unknown")).lower()
    bits = _int(q, "bits", "w_bit", "num_bits")
    group = _int(q, "group_size", "q_group_size")
    detail: str | None = None
    if method == "fp8":
        parts = [str(q.get("fmt") or "e4m3")]
        if q.get("activation_scheme"):
            parts.append(f"{q['activation_scheme']} activations")
        block = q.get("weight_block_size")
        if isinstance(block, list) and block:
            parts.append("x".join(str(b) for b in block) + " blocks")
        detail, bits = ", ".join(parts), 8
    elif method == "bitsandbytes":
        if q.get("load_in_4bit"):
            bits, detail = 4, str(q.get("bnb_4bit_quant_type") or "fp4")
        elif q.get("load_in_8bit"):
            bits, detail = 8, "int8"
    elif method == "compressed-tensors":
        bits, group, detail = _compressed_tensors(q)
    elif method in ("awq", "gptq") and q.get("version"):
        detail = str(q["version"])
    return QuantInfo(method=method, bits=bits, group_size=group, detail=detail)


def _compressed_tensors(q: Mapping[str, Any]) -> tuple[int | None, int | None, str | None]:
    groups = q.get("config_groups")
    weights: Mapping[str, Any] = {}
    if isinstance(groups, Mapping) and groups:
        first = next(iter(groups.values()))
        if isinstance(first, Mapping) and isinstance(first.get("weights"), Mapping):
            weights = first["weights"]
    bits = _int(weights, "num_bits")
    group = _int(weights, "group_size")
    kind = weights.get("type")
    fmt = q.get("format")
    detail = ", ".join(str(p) for p in (fmt, f"{kind}{bits}" if kind and bits else None) if p) or None
    return bits, group, detail


def _rope(cfg: Mapping[str, Any]) -> RopeScaling | None:
    rope = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    if not isinstance(rope, Mapping):
        return None
    kind = str(rope.get("rope_type") or rope.get("type") or "default")
    if kind == "default" and "factor" not in rope:
        return None
    factor = rope.get("factor")
    return RopeScaling(
        type=kind,
        factor=float(factor) if isinstance(factor, int | float) else None,
        original_max_position_embeddings=_int(rope, "original_max_position_embeddings"),
    )


def _context_length(max_pos: int | None, rope: RopeScaling | None) -> int | None:
    if rope is None or rope.factor is None or rope.type in ("llama3", "longrope", "su", "mrope"):
        return max_pos
    if rope.type == "yarn":
        base = rope.original_max_position_embeddings or max_pos
    elif rope.type in ("linear", "dynamic"):
        base = max_pos
    else:
        return max_pos
    return None if base is None else math.floor(base * rope.factor)


def _mla(cfg: Mapping[str, Any]) -> MlaDims | None:
    kv_rank = _int(cfg, "kv_lora_rank")
    rope_dim = _int(cfg, "qk_rope_head_dim")
    if kv_rank is None or rope_dim is None:
        return None
    return MlaDims(
        kv_lora_rank=kv_rank,
        q_lora_rank=_int(cfg, "q_lora_rank"),
        qk_nope_head_dim=_int(cfg, "qk_nope_head_dim"),
        qk_rope_head_dim=rope_dim,
        v_head_dim=_int(cfg, "v_head_dim"),
    )


def _moe(cfg: Mapping[str, Any]) -> MoeDims | None:
    experts = _int(cfg, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
    if not experts or experts <= 1:
        return None
    return MoeDims(
        num_experts=experts,
        experts_per_token=_int(cfg, "num_experts_per_tok", "moe_topk", "num_selected_experts"),
        moe_intermediate_size=_int(cfg, "moe_intermediate_size"),
        shared_experts=_int(cfg, "n_shared_experts", "num_shared_experts"),
    )


def _sliding_window(cfg: Mapping[str, Any]) -> int | None:
    if cfg.get("use_sliding_window") is False:
        return None  # Qwen2-style configs carry a window they do not use
    return _int(cfg, "sliding_window")


def model_meta_from_config(config: Mapping[str, Any], weights: WeightsInfo | None) -> ModelMeta:
    """Build ``ModelMeta`` from a parsed ``config.json`` and the weight headers' totals.

    Never raises on odd configs: a key that is missing or of the wrong type becomes ``None``.
    """
    cfg = _text_config(config)
    archs = config.get("architectures")
    arch = str(archs[0]) if isinstance(archs, list) and archs else None
    hidden = _int(cfg, "hidden_size", "n_embd", "d_model", "dim")
    heads = _int(cfg, "num_attention_heads", "n_head", "n_heads", "num_heads")
    mla = _mla(cfg)
    head_dim = _int(cfg, "head_dim")
    if mla is not None and mla.qk_nope_head_dim is not None:
        head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    elif head_dim is None and hidden and heads:
        head_dim = hidden // heads
    max_pos = _int(
        cfg, "max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length"
    )
    rope = _rope(cfg)
    declared = cfg.get("torch_dtype") or cfg.get("dtype")
    dtype = (normalize_dtype(declared) or None) if isinstance(declared, str) else None
    tie = cfg.get("tie_word_embeddings")
    return ModelMeta(
        architecture=arch,
        model_type=str(config["model_type"]) if isinstance(config.get("model_type"), str) else None,
        param_count=weights.param_count if weights else None,
        weight_bytes=weights.weight_bytes if weights else None,
        dtype=dtype or (weights.main_dtype if weights else None),
        quantization=quant_info_from_config(config),
        num_layers=_int(cfg, "num_hidden_layers", "n_layer", "num_layers", "n_layers"),
        hidden_size=hidden,
        intermediate_size=_int(cfg, "intermediate_size", "ffn_dim", "n_inner"),
        num_attention_heads=heads,
        num_kv_heads=_int(cfg, "num_key_value_heads", "num_kv_heads", "n_kv_heads") or heads,
        head_dim=head_dim,
        vocab_size=_int(cfg, "vocab_size", "padded_vocab_size"),
        max_position_embeddings=max_pos,
        context_length=_context_length(max_pos, rope),
        rope_scaling=rope,
        sliding_window=_sliding_window(cfg),
        mla=mla,
        moe=_moe(cfg),
        tie_word_embeddings=tie if isinstance(tie, bool) else None,
    )


def kv_cache_bytes_per_token(meta: ModelMeta, dtype_bytes: float = 2.0) -> int | None:
    """KV-cache bytes one token costs across all layers, full attention everywhere.

    MHA/GQA: 2 (K and V) x layers x kv_heads x head_dim x dtype bytes. MLA: one latent of
    ``kv_lora_rank + qk_rope_head_dim`` per layer. Sliding-window layers are counted as full, so
    this is an upper bound; ``None`` when the config lacks a dimension.
    """
    if meta.num_layers is None:
        return None
    if meta.mla is not None:
        return math.ceil(meta.num_layers * (meta.mla.kv_lora_rank + meta.mla.qk_rope_head_dim) * dtype_bytes)
    if meta.num_kv_heads is None or meta.head_dim is None:
        return None
    return math.ceil(2 * meta.num_layers * meta.num_kv_heads * meta.head_dim * dtype_bytes)
