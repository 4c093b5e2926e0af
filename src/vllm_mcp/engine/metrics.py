"""vLLM ``/metrics`` → frozen typed snapshots, and the rates and percentiles between two of them.

The public surface (the monitor, the optimizer and the MCP tools code against it)::

    page = parse_metrics(text, at=clock())       # MetricsPage
    snap = page.models["qwen-coder"]             # ModelMetrics (engines aggregated)
    page.engines[("qwen-coder", "0")]            # ModelMetrics of one engine
    page.families["vllm:iteration_tokens_total"] # any vllm: family, untyped access
    stats = derive(older_snap, snap)             # DerivedStats: rates/s, hit rate, p50…p99

Modules: ``metrics_parse`` (the line parser), ``metrics_snapshot`` (the typed snapshots and how
series map onto them), ``metrics_stats`` (deltas, rates, ``histogram_quantile``).
"""

from __future__ import annotations

from vllm_mcp.engine.metrics_parse import Family, Sample, parse_families
from vllm_mcp.engine.metrics_snapshot import (
    KNOWN_HISTOGRAMS,
    SLEEP_STATES,
    CacheConfig,
    Histogram,
    LoraInfo,
    MetricsPage,
    ModelMetrics,
    build_page,
)
from vllm_mcp.engine.metrics_stats import (
    QUANTILES,
    DerivedStats,
    Percentiles,
    derive,
    histogram_delta,
    histogram_quantile,
)

__all__ = [
    "KNOWN_HISTOGRAMS",
    "QUANTILES",
    "SLEEP_STATES",
    "CacheConfig",
    "DerivedStats",
    "Family",
    "Histogram",
    "LoraInfo",
    "MetricsPage",
    "ModelMetrics",
    "Percentiles",
    "Sample",
    "derive",
    "histogram_delta",
    "histogram_quantile",
    "parse_metrics",
]


def parse_metrics(text: str, *, at: float) -> MetricsPage:
    """Parse a vLLM ``/metrics`` page scraped at ``at`` (the caller's clock, in seconds).

    Raises ``UpstreamError`` (naming the line) when a ``vllm:`` line is not Prometheus text.
    A page without ``vllm:`` families gives a page with no models, not an error.
    """
    return build_page(parse_families(text), at)
