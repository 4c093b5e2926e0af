"""What vLLM says about its memory when it starts: its log lines and ``vllm:cache_config_info``.

Lines read (vLLM 0.3x; every one optional — a line that is missing leaves its field ``None``):

    Initializing a V1 LLM engine (v0.32.0) with config: …
    CPU KV cache size: 65,536 tokens, Maximum concurrency for 512 tokens per request: 128.00x
    GPU KV cache size: …                                 (same shape on a GPU)
    Model loading took 14.99 GiB memory and 4.123 seconds
    Available KV cache memory: 55.62 GiB
    Estimated CUDA graph memory: 0.52 GiB total
    Graph capturing finished in 6 secs, took 0.53 GiB
    CUDA graph pool memory: 0.53 GiB (actual), 0.52 GiB (estimated), …
    Explicitly set (0.06/7.96) GiB for KV cache on node 0.       (CPU backend; or "Auto set")
    init engine (profile, create kv cache, warmup model) took 12.34 s

With tensor parallelism every worker logs its own line; the largest value (the busiest rank) is
kept. ``cache_config_info`` labels give the exact block count and the sizes vLLM settled on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["StartReport", "cache_config_labels", "parse_start_report"]

GIB = 1 << 30

_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"
_PATTERNS: dict[str, re.Pattern[str]] = {
    "vllm_version": re.compile(r"Initializing a V1 LLM engine \(v([^)\s]+)\)"),
    "kv": re.compile(
        rf"(GPU|CPU|XPU|TPU|HPU|[A-Z]+) KV cache size: {_NUM} tokens, Maximum concurrency for "
        rf"{_NUM} tokens per request: {_NUM}x"
    ),
    "model_loading": re.compile(rf"Model loading took {_NUM} GiB(?: memory)? and {_NUM} seconds"),
    "available_kv": re.compile(rf"Available KV cache memory: {_NUM} GiB"),
    "graph_estimate": re.compile(rf"Estimated CUDA graph memory: {_NUM} GiB"),
    "graph_took": re.compile(rf"Graph capturing finished in {_NUM} secs, took {_NUM} GiB"),
    "graph_pool": re.compile(rf"CUDA graph pool memory: {_NUM} GiB \(actual\)"),
    "cpu_kv": re.compile(rf"(?:Explicitly|Auto) set \({_NUM}/{_NUM}\) GiB for KV cache"),
    "init_engine": re.compile(rf"init engine \(profile, create kv cache, warmup model\) took {_NUM} s"),
}


def _f(text: str) -> float:
    return float(text.replace(",", ""))


@dataclass(frozen=True)
class StartReport:
    """Everything vLLM reported about memory at one start (``None`` = not reported)."""

    vllm_version: str | None = None
    device_kind: str | None = None  # "GPU" / "CPU" as the KV line names the pool
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    max_model_len: int | None = None
    model_loading_bytes: int | None = None
    model_loading_s: float | None = None
    available_kv_bytes: int | None = None
    graph_bytes: int | None = None  # what capturing took (or the pool's actual size)
    graph_estimate_bytes: int | None = None
    init_engine_s: float | None = None
    num_blocks: int | None = None
    block_size: int | None = None
    kv_cache_memory_bytes: int | None = None
    gpu_memory_utilization: float | None = None
    cache_dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def has_kv(self) -> bool:
        return self.kv_cache_tokens is not None


def _max_gib(matches: list[re.Match[str]], group: int = 1) -> int | None:
    if not matches:
        return None
    return int(max(_f(m.group(group)) for m in matches) * GIB)


def _opt_int(labels: Mapping[str, str], key: str) -> int | None:
    value = labels.get(key)
    try:
        return int(float(value)) if value not in (None, "", "None") else None
    except ValueError:
        return None


def _opt_float(labels: Mapping[str, str], key: str) -> float | None:
    value = labels.get(key)
    try:
        return float(value) if value not in (None, "", "None") else None
    except ValueError:
        return None


def parse_start_report(log_text: str, cache_config_info: Mapping[str, str] | None = None) -> StartReport:
    """Parse a start log (and the ``cache_config_info`` labels, when given) into a report."""
    found = {key: list(p.finditer(log_text)) for key, p in _PATTERNS.items()}
    version = found["vllm_version"][-1].group(1) if found["vllm_version"] else None
    kv = found["kv"][-1] if found["kv"] else None
    loading = found["model_loading"]
    graph = _max_gib(found["graph_pool"]) or _max_gib(found["graph_took"], 2)
    available = _max_gib(found["available_kv"]) or _max_gib(found["cpu_kv"])
    labels = cache_config_info or {}
    tokens = int(_f(kv.group(2))) if kv else _opt_int(labels, "kv_cache_size_tokens")
    concurrency = _f(kv.group(4)) if kv else _opt_float(labels, "kv_cache_max_concurrency")
    dtype = labels.get("cache_dtype")
    return StartReport(
        vllm_version=version,
        device_kind=kv.group(1) if kv else None,
        kv_cache_tokens=tokens,
        max_concurrency=concurrency,
        max_model_len=int(_f(kv.group(3))) if kv else None,
        model_loading_bytes=_max_gib(loading),
        model_loading_s=max(_f(m.group(2)) for m in loading) if loading else None,
        available_kv_bytes=available,
        graph_bytes=graph,
        graph_estimate_bytes=_max_gib(found["graph_estimate"]),
        init_engine_s=_f(found["init_engine"][-1].group(1)) if found["init_engine"] else None,
        num_blocks=_opt_int(labels, "num_gpu_blocks"),
        block_size=_opt_int(labels, "block_size"),
        kv_cache_memory_bytes=_opt_int(labels, "kv_cache_memory_bytes"),
        gpu_memory_utilization=_opt_float(labels, "gpu_memory_utilization"),
        cache_dtype=dtype if dtype not in (None, "", "None") else None,
    )


_INFO_LINE = re.compile(r"^vllm:cache_config_info\{(.*)\}\s+\S+", re.MULTILINE)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def cache_config_labels(metrics_text: str) -> dict[str, str]:
    """The labels of the ``vllm:cache_config_info`` sample on a ``/metrics`` page ({} if absent).

    Its label values are plain (numbers, names, ``None``), so one regex reads them.
    """
    match = _INFO_LINE.search(metrics_text)
    if match is None:
        return {}
    return {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(match.group(1))}
