"""``ModelDims``: the few numbers of a model the memory estimator needs. Pure.

Filled from ``config.json`` plus the weight file headers (``vllm_mcp.optimizer.model_files``), from
the discovery metadata (``ModelMeta``) when it exists, or from the published dimensions in
``vllm_mcp.core.model_catalog``. Kept minimal on purpose: add a field only when an estimate needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vllm_mcp.core.model_meta import ModelMeta, normalize_dtype
from vllm_mcp.errors import InvalidRequest

__all__ = [
    "DTYPE_BYTES",
    "ModelDims",
    "dims_from_meta",
    "dtype_bytes",
    "sliding_layers_from_config",
]

#: Bytes per element of the dtypes a checkpoint, an engine or a KV cache may use.
DTYPE_BYTES: dict[str, float] = {
    "float64": 8,
    "float32": 4,
    "bfloat16": 2,
    "float16": 2,
    "float8_e4m3": 1,
    "float8_e5m2": 1,
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "fp8_inc": 1,
    "fp8_ds_mla": 1,
    "int64": 8,
    "int32": 4,
    "int16": 2,
    "int8": 1,
    "uint8": 1,
    "bool": 1,
}


def dtype_bytes(name: str) -> float:
    """Bytes per element; raises ``InvalidRequest`` for a dtype we cannot size."""
    key = normalize_dtype(name)
    if key not in DTYPE_BYTES:
        raise InvalidRequest(
            f"unknown dtype {name!r}",
            hint=f"use one of: {', '.join(sorted(k for k in DTYPE_BYTES if not k.startswith('int')))}",
            field="dtype",
        )
    return DTYPE_BYTES[key]


@dataclass(frozen=True)
class ModelDims:
    """What the estimator knows about a model. Byte counts are exact when read from files."""

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    param_count: int
    weight_bytes: int = 0  # the checkpoint's tensor bytes; 0 → param_count × dtype bytes
    embedding_params: int = 0  # token embedding (+ untied LM head); 0 → vocab × hidden (× 2 untied)
    intermediate_size: int = 0
    max_position_embeddings: int | None = None
    dtype: str = "bfloat16"  # the checkpoint's dtype
    quantization: str | None = None  # the checkpoint's quantization method (quant_method)
    tie_word_embeddings: bool = False
    kv_lora_rank: int | None = None  # MLA: the latent the KV cache stores …
    qk_rope_head_dim: int | None = None  # … plus the decoupled RoPE key
    sliding_window: int | None = None
    sliding_layers: tuple[int, ...] = ()  # indices of the layers that use the window

    def __post_init__(self) -> None:
        for field_name in ("num_layers", "hidden_size", "num_attention_heads", "num_kv_heads", "head_dim"):
            if getattr(self, field_name) < 1:
                raise InvalidRequest(f"model {self.name}: {field_name} must be ≥ 1", field=field_name)
        if self.vocab_size < 0 or self.param_count < 0 or self.weight_bytes < 0:
            raise InvalidRequest(f"model {self.name}: sizes must be ≥ 0", field="param_count")

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank is not None and self.qk_rope_head_dim is not None

    @property
    def mla_latent_dim(self) -> int:
        """Per-token, per-layer elements an MLA layer caches (0 when not MLA)."""
        return (self.kv_lora_rank or 0) + (self.qk_rope_head_dim or 0) if self.is_mla else 0

    @property
    def checkpoint_bytes(self) -> int:
        if self.weight_bytes:
            return self.weight_bytes
        return int(self.param_count * DTYPE_BYTES.get(normalize_dtype(self.dtype), 2))

    @property
    def embedding_param_count(self) -> int:
        if self.embedding_params:
            return self.embedding_params
        tables = 1 if self.tie_word_embeddings else 2
        return self.vocab_size * self.hidden_size * tables

    @property
    def sliding_layer_count(self) -> int:
        return len(self.sliding_layers) if self.sliding_window else 0


def _ints(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def sliding_layers_from_config(config: Mapping[str, Any], num_layers: int) -> tuple[int, ...]:
    """Which layers use a sliding window, from a ``config.json`` (top level or ``text_config``).

    ``layer_types`` wins when present; Gemma-2 alternates (even layers slide); Gemma-3 uses
    ``sliding_window_pattern`` (every Nth layer is global); Qwen2-style ``use_sliding_window:
    false`` means none; any other config with a window slides on every layer (Mistral v0.1).
    """
    cfg: Mapping[str, Any] = config
    text = config.get("text_config")
    if isinstance(text, Mapping) and "num_hidden_layers" not in config:
        cfg = {**config, **text}
    if not cfg.get("sliding_window") or cfg.get("use_sliding_window") is False:
        return ()
    types = _ints(cfg.get("layer_types"))
    if types:
        return tuple(i for i, t in enumerate(types[:num_layers]) if "sliding" in t)
    model_type = str(cfg.get("model_type") or "")
    if model_type == "gemma2":
        return tuple(i for i in range(num_layers) if i % 2 == 0)
    pattern = cfg.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 1:
        return tuple(i for i in range(num_layers) if (i + 1) % pattern != 0)
    return tuple(range(num_layers))


def dims_from_meta(
    meta: ModelMeta,
    *,
    name: str,
    sliding_layers: tuple[int, ...] | None = None,
    embedding_params: int = 0,
) -> ModelDims:
    """``ModelDims`` from the discovery metadata; ``InvalidRequest`` names what the files lack.

    ``sliding_layers`` defaults to every layer when the model has a window (see
    ``sliding_layers_from_config`` for the per-architecture rules when the raw config is at hand).
    """
    required = {
        "num_layers": meta.num_layers,
        "hidden_size": meta.hidden_size,
        "num_attention_heads": meta.num_attention_heads,
        "head_dim": meta.head_dim,
    }
    missing = [k for k, v in required.items() if not v]
    if missing:
        raise InvalidRequest(
            f"model {name}: its config does not give {', '.join(missing)}",
            hint="estimate it with explicit dimensions, or check that config.json is complete",
            field="model",
        )
    layers = meta.num_layers or 0
    window = meta.sliding_window
    if sliding_layers is None:
        sliding_layers = tuple(range(layers)) if window else ()
    return ModelDims(
        name=name,
        num_layers=layers,
        hidden_size=meta.hidden_size or 0,
        num_attention_heads=meta.num_attention_heads or 0,
        num_kv_heads=meta.num_kv_heads or meta.num_attention_heads or 0,
        head_dim=meta.head_dim or 0,
        vocab_size=meta.vocab_size or 0,
        param_count=meta.param_count or 0,
        weight_bytes=meta.weight_bytes or 0,
        embedding_params=embedding_params,
        intermediate_size=meta.intermediate_size or 0,
        max_position_embeddings=meta.context_length or meta.max_position_embeddings,
        dtype=normalize_dtype(meta.dtype or "bfloat16"),
        quantization=meta.quantization.method if meta.quantization else None,
        tie_word_embeddings=bool(meta.tie_word_embeddings),
        kv_lora_rank=meta.mla.kv_lora_rank if meta.mla else None,
        qk_rope_head_dim=meta.mla.qk_rope_head_dim if meta.mla else None,
        sliding_window=window if sliding_layers else None,
        sliding_layers=sliding_layers,
    )
