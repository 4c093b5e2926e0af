"""Rates and percentiles between two scrapes: bucket-delta quantiles placed like Prometheus'
histogram_quantile, counter resets, empty windows, and the captured idle → loaded window."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vllm_mcp.engine.metrics import (
    Histogram,
    ModelMetrics,
    derive,
    histogram_delta,
    histogram_quantile,
    parse_metrics,
)
from vllm_mcp.errors import InvalidRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "metrics"
INF = math.inf


def page(kind: str, at: float) -> ModelMetrics:
    (path,) = FIXTURES.glob(f"vllm-*-{kind}.txt")
    return parse_metrics(path.read_text(), at=at).models["tiny"]


def synthetic(
    at: float,
    *,
    prompt: float,
    success: float,
    hits: float,
    queries: float,
    buckets: tuple[float, float, float],
    preempt: float = 0.0,
) -> ModelMetrics:
    """A one-engine page with the counters and one histogram (bounds 0.1, 1, +Inf)."""
    b1, b2, binf = buckets
    lab = 'engine="0",model_name="m"'
    text = f"""\
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{{lab}}} {prompt}
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{{{lab}}} {preempt}
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{{{lab}}} {hits}
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{{{lab}}} {queries}
# TYPE vllm:request_success_total counter
vllm:request_success_total{{{lab},finished_reason="stop"}} {success}
vllm:request_success_total{{{lab},finished_reason="length"}} 1
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{{lab},le="0.1"}} {b1}
vllm:time_to_first_token_seconds_bucket{{{lab},le="1.0"}} {b2}
vllm:time_to_first_token_seconds_bucket{{{lab},le="+Inf"}} {binf}
vllm:time_to_first_token_seconds_count{{{lab}}} {binf}
vllm:time_to_first_token_seconds_sum{{{lab}}} {binf * 0.25}
"""
    return parse_metrics(text, at=at).models["m"]


BUCKETS = ((0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (INF, 40.0))


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.5, 0.1 + 0.4 * (10 / 20)),  # rank 20: 10 past the first bucket, 20 inside the second
        (0.99, 0.5 + 0.5 * (9.6 / 10)),
        (0.25, 0.1),  # rank 10 is exactly the first bucket's top
        (0.1, 0.1 * (4 / 10)),  # inside the first bucket, which starts at 0
        (0.0, 0.0),
        (1.0, 1.0),
    ],
)
def test_quantile_interpolates_inside_the_bucket(q: float, expected: float) -> None:
    assert histogram_quantile(q, BUCKETS) == pytest.approx(expected)


def test_a_rank_in_the_inf_bucket_answers_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.5, ((0.1, 1.0), (1.0, 2.0), (INF, 10.0))) == 1.0


@pytest.mark.parametrize(
    "buckets",
    [
        (),
        ((INF, 5.0),),  # fewer than two buckets
        ((0.1, 1.0), (1.0, 2.0)),  # no +Inf bucket
        ((0.1, 0.0), (INF, 0.0)),  # no observations
        ((0.1, math.nan), (INF, 3.0)),
    ],
)
def test_quantile_is_none_when_undefined(buckets: tuple[tuple[float, float], ...]) -> None:
    assert histogram_quantile(0.5, buckets) is None


def test_quantile_tolerates_non_monotonic_counts_and_non_positive_first_bound() -> None:
    assert histogram_quantile(0.5, ((0.1, 4.0), (1.0, 3.9), (INF, 4.0))) == pytest.approx(0.05)
    assert histogram_quantile(0.1, ((-1.0, 5.0), (INF, 10.0))) == -1.0


@pytest.mark.parametrize("q", [-0.1, 1.5, math.nan])
def test_quantile_outside_0_1_is_invalid(q: float) -> None:
    with pytest.raises(InvalidRequest):
        histogram_quantile(q, BUCKETS)


def test_derive_rates_hit_rate_and_percentiles_from_bucket_deltas() -> None:
    prev = synthetic(100.0, prompt=1000, success=10, hits=50, queries=100, buckets=(5, 10, 10))
    cur = synthetic(110.0, prompt=1500, success=30, hits=80, queries=200, buckets=(5, 28, 30), preempt=2)
    d = derive(prev, cur)
    assert (d.start, d.end, d.window_s) == (100.0, 110.0, 10.0)
    assert d.counter_reset is False
    assert d.prompt_tokens_per_s == 50.0
    assert d.requests_per_s == 2.0
    assert d.preemptions_per_s == 0.2
    assert d.prefix_cache_hit_rate == pytest.approx(0.3)
    assert d.generation_tokens_per_s is None  # not on the page
    ttft = d.histograms["time_to_first_token_seconds"]
    # window buckets: (0.1, 0), (1.0, 18), (+Inf, 20) — the 5 old fast requests are gone
    assert ttft.count == 20
    assert ttft.mean == pytest.approx((30 * 0.25 - 10 * 0.25) / 20)
    assert ttft.p50 == pytest.approx(0.1 + 0.9 * (10 / 18))
    assert ttft.p99 == 1.0  # rank 19.8 falls in +Inf
    # the cumulative page alone would put the median in the first bucket
    assert histogram_quantile(0.5, cur.histograms["time_to_first_token_seconds"].buckets) < 0.9


def test_a_counter_reset_uses_the_current_values_as_the_delta() -> None:
    prev = synthetic(100.0, prompt=1000, success=10, hits=50, queries=100, buckets=(5, 10, 10))
    cur = synthetic(104.0, prompt=40, success=3, hits=2, queries=8, buckets=(1, 4, 4))  # restarted
    d = derive(prev, cur)
    assert d.counter_reset is True
    assert d.prompt_tokens_per_s == 10.0
    assert d.requests_per_s == 1.0  # 3 stop + 1 length, all new
    assert d.prefix_cache_hit_rate == 0.25
    assert d.histograms["time_to_first_token_seconds"].count == 4
    assert d.histograms["time_to_first_token_seconds"].p50 == pytest.approx(0.1 + 0.9 * (1 / 3))


def test_an_idle_window_has_zero_rates_and_no_percentiles() -> None:
    snap = synthetic(100.0, prompt=1000, success=10, hits=50, queries=100, buckets=(5, 10, 10))
    later = synthetic(160.0, prompt=1000, success=10, hits=50, queries=100, buckets=(5, 10, 10))
    d = derive(snap, later)
    assert d.prompt_tokens_per_s == 0.0
    assert d.prefix_cache_hit_rate is None  # no queries in the window
    ttft = d.histograms["time_to_first_token_seconds"]
    assert (ttft.count, ttft.mean, ttft.p50, ttft.p90, ttft.p95, ttft.p99) == (
        0,
        None,
        None,
        None,
        None,
        None,
    )


def test_histogram_delta_detects_resets_and_changed_bounds() -> None:
    a = Histogram(buckets=((1.0, 2.0), (INF, 3.0)), sum=3.0, count=3.0)
    b = Histogram(buckets=((1.0, 5.0), (INF, 7.0)), sum=9.0, count=7.0)
    delta, reset = histogram_delta(a, b)
    assert (delta.buckets, delta.sum, delta.count, reset) == (((1.0, 3.0), (INF, 4.0)), 6.0, 4.0, False)
    assert histogram_delta(b, a) == (a, True)
    other_bounds = Histogram(buckets=((2.0, 5.0), (INF, 7.0)), sum=9.0, count=7.0)
    assert histogram_delta(a, other_bounds) == (other_bounds, True)
    assert histogram_delta(None, b) == (b, False)


def test_derive_refuses_snapshots_out_of_order_or_of_two_models() -> None:
    a = synthetic(100.0, prompt=1, success=1, hits=0, queries=0, buckets=(0, 0, 0))
    b = synthetic(100.0, prompt=2, success=1, hits=0, queries=0, buckets=(0, 0, 0))
    with pytest.raises(InvalidRequest, match="not later"):
        derive(a, b)
    other = parse_metrics(
        '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="x"} 0\n', at=200.0
    ).models["x"]
    with pytest.raises(InvalidRequest, match="across models") as err:
        derive(a, other)
    assert err.value.hint


def test_missing_counters_derive_to_none() -> None:
    text = '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 1\n'
    a, b = parse_metrics(text, at=1.0).models["m"], parse_metrics(text, at=2.0).models["m"]
    d = derive(a, b)
    assert (d.prompt_tokens_per_s, d.requests_per_s, d.prefix_cache_hit_rate) == (None, None, None)
    assert d.histograms == {}
    assert d.counter_rates == {}


def test_nan_counters_do_not_become_rates() -> None:
    text = '# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{model_name="m"} NaN\n'
    a, b = parse_metrics(text, at=1.0).models["m"], parse_metrics(text, at=2.0).models["m"]
    assert derive(a, b).prompt_tokens_per_s is None


def test_the_captured_idle_to_loaded_window() -> None:
    idle, loaded = page("idle", 1000.0), page("loaded", 1004.0)
    d = derive(idle, loaded)
    assert d.counter_reset is False
    assert d.generation_tokens_per_s == pytest.approx(
        ((loaded.generation_tokens or 0) - (idle.generation_tokens or 0)) / 4.0
    )
    assert (d.generation_tokens_per_s or 0) > 0
    ttft = d.histograms["time_to_first_token_seconds"]
    itl = d.histograms["inter_token_latency_seconds"]
    assert ttft.count == (
        loaded.histograms["time_to_first_token_seconds"].count
        - idle.histograms["time_to_first_token_seconds"].count
    )
    for p in (ttft, itl):
        assert p.p50 is not None
        assert p.p99 is not None
        assert 0 < p.p50 <= p.p99
    assert d.prefix_cache_hit_rate is not None
    assert 0 <= d.prefix_cache_hit_rate <= 1
