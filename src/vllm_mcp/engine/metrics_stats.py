"""Rates and percentiles over the window between two scrapes of the same model.

vLLM's counters and histograms are cumulative since the engine started, so a window's numbers
come from the difference of two snapshots. Percentiles come from the *bucket deltas*, placed
like Prometheus' ``histogram_quantile``: find the bucket holding the rank, interpolate linearly
inside it (the first bucket starts at 0), and a rank that falls in ``+Inf`` answers the highest
finite bound. A counter that went down means the engine restarted: the current value is then
the whole delta (as Prometheus' ``rate`` does), and ``counter_reset`` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vllm_mcp.engine.metrics_snapshot import Histogram, ModelMetrics
from vllm_mcp.errors import InvalidRequest

__all__ = ["QUANTILES", "DerivedStats", "Percentiles", "derive", "histogram_delta", "histogram_quantile"]

QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Percentiles:
    """One histogram over the window. Percentiles are ``None`` when nothing was observed."""

    count: float
    mean: float | None
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class DerivedStats:
    """What happened to one model between two scrapes. Rates are per second; ``None`` when the
    counter is not on the page (or not a finite number)."""

    model_name: str
    start: float
    end: float
    counter_reset: bool
    counter_rates: Mapping[str, float]  # every counter of the later snapshot, per second
    prompt_tokens_per_s: float | None
    generation_tokens_per_s: float | None
    requests_per_s: float | None  # finished requests, any finished_reason
    preemptions_per_s: float | None
    prefix_cache_hit_rate: float | None  # hits / queries in the window; None with no queries
    histograms: Mapping[str, Percentiles]

    @property
    def window_s(self) -> float:
        return self.end - self.start


def derive(prev: ModelMetrics, cur: ModelMetrics) -> DerivedStats:
    """The window from ``prev`` to ``cur`` (same model, ``cur`` scraped later)."""
    if prev.model_name != cur.model_name:
        raise InvalidRequest(
            f"cannot derive stats across models: {prev.model_name!r} then {cur.model_name!r}",
            hint="Pass two snapshots of the same model.",
        )
    window = cur.at - prev.at
    if not window > 0:
        raise InvalidRequest(
            f"the second snapshot (at {cur.at}) is not later than the first (at {prev.at})",
            hint="Pass the older snapshot first, and scrape again before deriving.",
        )
    reset = False
    rates: dict[str, float] = {}
    for name, value in cur.counters.items():
        delta, was_reset = _counter_delta(prev.counters.get(name), value)
        reset |= was_reset
        if math.isfinite(delta):
            rates[name] = delta / window

    finished, finished_reset = _counter_delta(_total(prev.request_success), _total(cur.request_success))
    hits, _ = _counter_delta(prev.prefix_cache_hits, cur.prefix_cache_hits)
    queries, _ = _counter_delta(prev.prefix_cache_queries, cur.prefix_cache_queries)

    histograms: dict[str, Percentiles] = {}
    for name, hist in cur.histograms.items():
        delta_hist, was_reset = histogram_delta(prev.histograms.get(name), hist)
        reset |= was_reset
        histograms[name] = _percentiles(delta_hist)

    return DerivedStats(
        model_name=cur.model_name,
        start=prev.at,
        end=cur.at,
        counter_reset=reset or finished_reset,
        counter_rates=rates,
        prompt_tokens_per_s=rates.get("prompt_tokens"),
        generation_tokens_per_s=rates.get("generation_tokens"),
        requests_per_s=finished / window if cur.request_success and math.isfinite(finished) else None,
        preemptions_per_s=rates.get("num_preemptions"),
        prefix_cache_hit_rate=hits / queries if queries > 0 and math.isfinite(hits) else None,
        histograms=histograms,
    )


def _total(by_label: Mapping[str, float]) -> float | None:
    return sum(by_label.values()) if by_label else None


def _counter_delta(prev: float | None, cur: float | None) -> tuple[float, bool]:
    """(delta, reset?). A counter that went down restarted from zero; one that just appeared
    counts from zero too (but is no reset); a missing one has no delta (NaN)."""
    if cur is None:
        return math.nan, False
    if prev is None:
        return cur, False
    if cur < prev:
        return cur, True
    return cur - prev, False


def histogram_delta(prev: Histogram | None, cur: Histogram) -> tuple[Histogram, bool]:
    """The observations between two scrapes, and whether the histogram was reset in between.

    A reset — the count or any bucket went down, or the bucket bounds changed — makes the
    current histogram the whole delta.
    """
    if prev is None:
        return cur, False
    same_bounds = len(prev.buckets) == len(cur.buckets) and all(
        p[0] == c[0] for p, c in zip(prev.buckets, cur.buckets, strict=True)
    )
    if (
        not same_bounds
        or cur.count < prev.count
        or any(c[1] < p[1] for p, c in zip(prev.buckets, cur.buckets, strict=True))
    ):
        return cur, True
    buckets = tuple((c[0], c[1] - p[1]) for p, c in zip(prev.buckets, cur.buckets, strict=True))
    return Histogram(buckets=buckets, sum=cur.sum - prev.sum, count=cur.count - prev.count), False


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q``-quantile (0 ≤ q ≤ 1) of cumulative ``(le, count)`` buckets sorted by ``le``.

    ``None`` when it is undefined: no ``+Inf`` bucket, fewer than two buckets, no observations,
    or a count that is not a finite number.
    """
    if not 0.0 <= q <= 1.0:
        raise InvalidRequest(f"quantile {q} is outside 0..1", hint="Pass e.g. 0.5 for the median.")
    counts = _usable_counts(buckets)
    if counts is None:
        return None
    total = counts[-1]
    rank = q * total
    b = next(i for i, c in enumerate(counts) if c >= rank)  # the +Inf bucket always qualifies
    if b == len(buckets) - 1:
        return buckets[-2][0]  # rank beyond the last finite bound: that bound is our best answer
    upper = buckets[b][0]
    if b == 0:
        if upper <= 0:
            return upper
        lower, below = 0.0, 0.0
    else:
        lower, below = buckets[b - 1][0], counts[b - 1]
    in_bucket = counts[b] - below
    if in_bucket <= 0:
        return lower
    return lower + (upper - lower) * (rank - below) / in_bucket


def _usable_counts(buckets: Sequence[tuple[float, float]]) -> list[float] | None:
    """The cumulative counts made monotonic (float noise can make them dip; Prometheus fixes that
    too), or ``None`` when no quantile is defined for these buckets."""
    if len(buckets) < 2 or buckets[-1][0] != math.inf:
        return None
    counts: list[float] = []
    for _, count in buckets:
        if not math.isfinite(count):
            return None
        counts.append(max(count, counts[-1]) if counts else count)
    return counts if counts[-1] > 0 else None


def _percentiles(h: Histogram) -> Percentiles:
    p50, p90, p95, p99 = (histogram_quantile(q, h.buckets) for q in QUANTILES)
    mean = h.sum / h.count if h.count > 0 and math.isfinite(h.sum) else None
    return Percentiles(count=h.count, mean=mean, p50=p50, p90=p90, p95=p95, p99=p99)
