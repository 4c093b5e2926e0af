"""``EngineConfig``: the engine flags that decide memory, and how vLLM fills in their defaults. Pure.

Built from an ``EngineSpec`` (what the model manager runs), from a ``vllm serve`` argv (what the
supervisor spawned), or field by field (CLI, MCP tools). ``resolve`` turns it into concrete
numbers for one device the way vLLM 0.3x does: dtype ``auto`` downcasts float32 checkpoints to
bfloat16 (float16 where the GPU has no BF16), block size 16 on GPUs and 128 on the CPU backend
(16 for MLA there), scheduler limits from vLLM's per-device defaults for the OpenAI server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.gpu_catalog import Device, GiB
from vllm_mcp.core.model_dims import ModelDims, dtype_bytes
from vllm_mcp.core.model_meta import normalize_dtype
from vllm_mcp.errors import InvalidRequest

__all__ = ["DEFAULT_GPU_MEMORY_UTILIZATION", "EngineConfig", "ResolvedConfig", "resolve"]

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9

_INT_FLAGS = {
    "--tensor-parallel-size": "tensor_parallel_size",
    "-tp": "tensor_parallel_size",
    "--pipeline-parallel-size": "pipeline_parallel_size",
    "-pp": "pipeline_parallel_size",
    "--max-model-len": "max_model_len",
    "--max-num-seqs": "max_num_seqs",
    "--max-num-batched-tokens": "max_num_batched_tokens",
    "--block-size": "block_size",
    "--kv-cache-memory-bytes": "kv_cache_memory_bytes",
}
_STR_FLAGS = {
    "--dtype": "dtype",
    "--quantization": "quantization",
    "-q": "quantization",
    "--kv-cache-dtype": "kv_cache_dtype",
}


@dataclass(frozen=True)
class EngineConfig:
    """The memory-relevant engine flags; ``None`` = vLLM's default."""

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    dtype: str = "auto"
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    block_size: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool = False

    def __post_init__(self) -> None:
        for name in ("tensor_parallel_size", "pipeline_parallel_size"):
            if not 1 <= getattr(self, name) <= 512:
                raise InvalidRequest(f"{name} must be between 1 and 512", field=name)
        for name in ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "block_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidRequest(f"{name} must be ≥ 1, got {value}", field=name)
        util = self.gpu_memory_utilization
        if util is not None and not 0 < util <= 1:
            raise InvalidRequest(
                f"gpu_memory_utilization must be in (0, 1], got {util}", field="gpu_memory_utilization"
            )
        if self.kv_cache_memory_bytes is not None and self.kv_cache_memory_bytes < 1:
            raise InvalidRequest("kv_cache_memory_bytes must be > 0", field="kv_cache_memory_bytes")
        if util is not None and self.kv_cache_memory_bytes is not None:
            raise InvalidRequest(
                "gpu_memory_utilization and kv_cache_memory_bytes exclude each other",
                hint="give one memory knob: a fraction of each GPU, or an exact KV-cache size",
                field="kv_cache_memory_bytes",
            )
        for name in ("dtype", "kv_cache_dtype"):
            value = getattr(self, name)
            if value != "auto":
                dtype_bytes(value)  # raises InvalidRequest for a dtype we cannot size

    @property
    def world_size(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def with_(self, **changes: Any) -> EngineConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequest(f"unknown engine config fields: {', '.join(unknown)}", field=unknown[0])
        return cls(**{k: v for k, v in data.items() if v is not None})

    @classmethod
    def from_spec(cls, spec: EngineSpec) -> EngineConfig:
        """The memory-relevant part of what the model manager will run."""
        extra = _parse_flags(spec.extra_flags)
        return cls(
            tensor_parallel_size=spec.tensor_parallel_size,
            pipeline_parallel_size=spec.pipeline_parallel_size,
            dtype=spec.dtype or "auto",
            quantization=spec.quantization,
            kv_cache_dtype=spec.kv_cache_dtype or "auto",
            max_model_len=spec.max_model_len,
            max_num_seqs=extra.get("max_num_seqs"),
            max_num_batched_tokens=extra.get("max_num_batched_tokens"),
            block_size=extra.get("block_size"),
            gpu_memory_utilization=spec.gpu_memory_utilization,
            kv_cache_memory_bytes=spec.kv_cache_memory_bytes,
            enforce_eager=spec.enforce_eager,
        )

    @classmethod
    def from_argv(cls, argv: Sequence[str]) -> EngineConfig:
        """From ``vllm serve MODEL --flag value …`` (or just the flags). Unknown flags are ignored."""
        values = _parse_flags(argv)
        return cls(**values)


def _parse_flags(argv: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        flag, eq, inline = items[i].partition("=")
        i += 1
        if flag == "--enforce-eager":
            out["enforce_eager"] = True
            continue
        name = _INT_FLAGS.get(flag) or _STR_FLAGS.get(flag)
        if flag == "--gpu-memory-utilization":
            name = "gpu_memory_utilization"
        if name is None:
            continue
        if not eq:
            if i >= len(items):
                raise InvalidRequest(f"engine flag {flag} needs a value", field=name)
            inline = items[i]
            i += 1
        try:
            if flag in _INT_FLAGS:
                out[name] = int(inline)
            elif name == "gpu_memory_utilization":
                out[name] = float(inline)
            else:
                out[name] = inline
        except ValueError:
            raise InvalidRequest(f"engine flag {flag} has a bad value {inline!r}", field=name) from None
    return out


@dataclass(frozen=True)
class ResolvedConfig:
    """Every number vLLM will use on one device, defaults filled in."""

    tensor_parallel_size: int
    pipeline_parallel_size: int
    dtype: str  # the runtime dtype of weights and activations
    quantization: str | None
    kv_cache_dtype: str  # as given ("auto" kept for display)
    kv_cache_dtype_bytes: float
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    block_size: int
    gpu_memory_utilization: float | None  # None when kv_cache_memory_bytes fixes the pool
    kv_cache_memory_bytes: int | None
    enforce_eager: bool
    max_concurrent_batches: int

    @property
    def in_flight_tokens(self) -> int:
        return self.max_concurrent_batches * self.max_num_batched_tokens

    def to_engine_config(self) -> EngineConfig:
        return EngineConfig(
            tensor_parallel_size=self.tensor_parallel_size,
            pipeline_parallel_size=self.pipeline_parallel_size,
            dtype=self.dtype,
            quantization=self.quantization,
            kv_cache_dtype=self.kv_cache_dtype,
            max_model_len=self.max_model_len,
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
            block_size=self.block_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            kv_cache_memory_bytes=self.kv_cache_memory_bytes,
            enforce_eager=self.enforce_eager,
        )


def runtime_dtype(model: ModelDims, requested: str, device: Device) -> str:
    """vLLM's dtype choice: ``auto`` keeps the checkpoint dtype but downcasts float32 (and any
    quantized storage type) to the platform's preferred 16-bit type."""
    if requested != "auto":
        return normalize_dtype(requested)
    preferred = "bfloat16" if device.bf16_supported else "float16"
    checkpoint = normalize_dtype(model.dtype)
    if checkpoint in ("bfloat16", "float16"):
        return checkpoint if (checkpoint != "bfloat16" or device.bf16_supported) else "float16"
    return preferred


def _default_limits(device: Device, world_size: int) -> tuple[int, int]:
    """``(max_num_batched_tokens, max_num_seqs)`` vLLM picks for the OpenAI server."""
    if device.platform == "cpu":
        return 2048 * world_size, 128 * world_size
    if device.memory_total_bytes >= 160 * GiB:
        return 16384, 1024
    if device.memory_total_bytes >= 70 * GiB and "A100" not in device.name.upper():
        return 8192, 1024
    return 2048, 256


def resolve(model: ModelDims, config: EngineConfig, device: Device) -> ResolvedConfig:
    """Fill vLLM's defaults in for ``device`` (never raises for a valid ``EngineConfig``)."""
    dtype = runtime_dtype(model, config.dtype, device)
    kv_dtype = config.kv_cache_dtype
    kv_bytes = dtype_bytes(dtype) if kv_dtype == "auto" else dtype_bytes(kv_dtype)
    batched, seqs = _default_limits(device, config.world_size)
    if config.block_size is not None:
        block = config.block_size
    elif device.platform == "cpu":
        block = 16 if model.is_mla else 128
    else:
        block = 64 if model.is_mla else 16
    max_len = config.max_model_len or model.max_position_embeddings or 2048
    util = config.gpu_memory_utilization
    if util is None and config.kv_cache_memory_bytes is None:
        util = DEFAULT_GPU_MEMORY_UTILIZATION
    pp = config.pipeline_parallel_size
    return ResolvedConfig(
        tensor_parallel_size=config.tensor_parallel_size,
        pipeline_parallel_size=pp,
        dtype=dtype,
        quantization=config.quantization,
        kv_cache_dtype=kv_dtype,
        kv_cache_dtype_bytes=kv_bytes,
        max_model_len=max_len,
        max_num_seqs=config.max_num_seqs or seqs,
        max_num_batched_tokens=config.max_num_batched_tokens or batched,
        block_size=block,
        gpu_memory_utilization=util,
        kv_cache_memory_bytes=config.kv_cache_memory_bytes,
        enforce_eager=config.enforce_eager or device.platform == "cpu",
        # Async scheduling (on by default) keeps two batches in flight; PP keeps one per stage.
        max_concurrent_batches=2 if pp == 1 else pp,
    )
