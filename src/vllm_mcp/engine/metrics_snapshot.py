"""Frozen, typed snapshots of a vLLM ``/metrics`` page: one per model, one per (model, engine).

Reading rules (vLLM 0.32 labels every series with ``engine`` and ``model_name``; a few do not):

- A series without ``model_name`` (``cache_config_info``, ``lora_requests_info``) describes the
  whole process, and one ``vllm serve`` serves one base model: it is attached to every model on
  the page (``cache_config_info`` still by its ``engine``).
- A series with ``model_name`` but no ``engine`` (``admission_rejections``: the API server
  rejects before any engine sees the request) counts once per model, in every engine's
  snapshot and once in the model's.
- A model's snapshot aggregates its engines (data parallel) like ``sum by (model_name)``:
  counters, histogram buckets and request gauges add up; ``kv_cache_usage`` is the mean; a
  sleep state counts only when every engine is in it.
- Counters are also summed over any other label (``prompt_tokens_by_source`` over ``source``)
  in ``counters``; the per-label split stays on ``MetricsPage.families``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from vllm_mcp.engine.metrics_parse import PREFIX, Family

__all__ = [
    "KNOWN_HISTOGRAMS",
    "SLEEP_STATES",
    "CacheConfig",
    "Histogram",
    "LoraInfo",
    "MetricsPage",
    "ModelMetrics",
    "build_page",
]

# The histograms the monitor reports on; every other ``vllm:`` histogram is kept too.
KNOWN_HISTOGRAMS = (
    "time_to_first_token_seconds",
    "inter_token_latency_seconds",
    "e2e_request_latency_seconds",
    "request_queue_time_seconds",
    "request_prefill_time_seconds",
    "request_decode_time_seconds",
    "request_inference_time_seconds",
    "request_prompt_tokens",
    "request_generation_tokens",
)
# ``vllm:engine_sleep_state{sleep_state=…}``: the current one is 1; at sleep level 0 none is.
SLEEP_STATES = ("awake", "weights_offloaded", "discard_all")

# Gauges and counters split by one label: short family name → (label, field of _Acc.labeled).
_BY_LABEL = {
    "num_requests_waiting_by_reason": "reason",
    "engine_sleep_state": "sleep_state",
    "request_success": "finished_reason",
    "admission_rejections": "reason",
}
_SUMMED_GAUGES = ("num_requests_running", "num_requests_waiting")
K = TypeVar("K", str, float)
KK = TypeVar("KK")
VV = TypeVar("VV")


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative buckets ``(le, count)`` sorted by ``le`` (``+Inf`` last when the page has it)."""

    buckets: tuple[tuple[float, float], ...]
    sum: float
    count: float


@dataclass(frozen=True, slots=True)
class CacheConfig:
    """``vllm:cache_config_info``: its labels, with the ones the optimizer uses typed."""

    block_size: int | None
    num_gpu_blocks: int | None
    kv_cache_size_tokens: int | None
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class LoraInfo:
    """``vllm:lora_requests_info``. vLLM adds a series per distinct label set and sets its value
    to the time of the change, never removing the old ones: the newest series is the state."""

    max_loras: int | None
    running: tuple[str, ...]
    waiting: tuple[str, ...]
    updated_at: float


@dataclass(frozen=True, slots=True)
class ModelMetrics:
    """One model (or one engine of it) at one scrape. ``None`` / empty: not on the page."""

    model_name: str
    engines: tuple[str, ...]
    at: float
    num_requests_running: float | None
    num_requests_waiting: float | None
    waiting_by_reason: Mapping[str, float]
    kv_cache_usage: float | None  # a 0–1 fraction (vLLM's kv_cache_usage_perc)
    sleep_states: Mapping[str, float]  # raw engine_sleep_state gauges by state
    cache_config: CacheConfig | None
    lora: LoraInfo | None
    counters: Mapping[str, float]  # every vllm counter by short name (no "vllm:", no "_total")
    request_success: Mapping[str, float]  # by finished_reason
    admission_rejections: Mapping[str, float]  # by reason
    histograms: Mapping[str, Histogram]  # every vllm histogram by short name

    @property
    def sleep_state(self) -> str | None:
        """The state whose gauge is 1 (``awake``, ``weights_offloaded``, ``discard_all``); ``None``
        when none is (asleep at level 0, or the gauge is missing: see ``is_sleeping``)."""
        return next((state for state, v in self.sleep_states.items() if v == 1), None)

    @property
    def is_sleeping(self) -> bool | None:
        """``None`` when the page has no ``engine_sleep_state``."""
        return None if not self.sleep_states else self.sleep_state != "awake"

    @property
    def prompt_tokens(self) -> float | None:
        return self.counters.get("prompt_tokens")

    @property
    def generation_tokens(self) -> float | None:
        return self.counters.get("generation_tokens")

    @property
    def prompt_tokens_cached(self) -> float | None:
        return self.counters.get("prompt_tokens_cached")

    @property
    def prefix_cache_queries(self) -> float | None:
        return self.counters.get("prefix_cache_queries")

    @property
    def prefix_cache_hits(self) -> float | None:
        return self.counters.get("prefix_cache_hits")

    @property
    def num_preemptions(self) -> float | None:
        return self.counters.get("num_preemptions")

    def histogram(self, name: str) -> Histogram | None:
        """A histogram by short name, e.g. ``time_to_first_token_seconds``."""
        return self.histograms.get(name)


@dataclass(frozen=True, slots=True)
class MetricsPage:
    """A parsed page. ``models`` by model_name; ``engines`` by (model_name, engine);
    ``families`` holds every ``vllm:`` family by its ``# TYPE`` name, for anything not typed."""

    at: float
    models: Mapping[str, ModelMetrics]
    engines: Mapping[tuple[str, str], ModelMetrics]
    families: Mapping[str, Family]

    def samples(self, name: str) -> list[tuple[Mapping[str, str], float]]:
        """``(labels, value)`` of every sample with this exact name (e.g. ``vllm:x_bucket``)."""
        return [(s.labels, s.value) for f in self.families.values() for s in f.samples if s.name == name]


@dataclass(slots=True)
class _HistAcc:
    buckets: dict[float, float] = field(default_factory=dict)
    sum: float = 0.0
    count: float = 0.0


@dataclass(slots=True)
class _Acc:
    """What one (model, engine) — or a model's engine-less series — adds up to while reading."""

    gauges: dict[str, float] = field(default_factory=dict)
    kv_usage: list[float] = field(default_factory=list)
    labeled: dict[str, dict[str, float]] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    hists: dict[str, _HistAcc] = field(default_factory=dict)


_Accs = dict[str, dict[str | None, _Acc]]  # model_name → engine (None: no engine label) → acc


def build_page(families: Mapping[str, Family], at: float) -> MetricsPage:
    accs: _Accs = {}
    cache_configs: dict[str, CacheConfig] = {}
    lora: LoraInfo | None = None
    for fam in families.values():
        short = fam.name[len(PREFIX) :]
        if fam.type == "counter":
            _read_counter(fam, short.removesuffix("_total"), accs)
        elif fam.type == "histogram":
            _read_histogram(fam, short, accs)
        elif short == "cache_config_info":
            cache_configs.update(_read_cache_configs(fam))
        elif short == "lora_requests_info":
            lora = _read_lora(fam)
        elif fam.type == "gauge":
            _read_gauge(fam, short, accs)
    models: dict[str, ModelMetrics] = {}
    engines: dict[tuple[str, str], ModelMetrics] = {}
    for model, by_engine in accs.items():
        shared = by_engine.pop(None, None)
        extra = [shared] if shared is not None else []
        ids = sorted((e for e in by_engine if e is not None), key=_engine_order)
        for eid in ids:
            snap = _snapshot(model, (eid,), at, [by_engine[eid], *extra], cache_configs.get(eid), lora)
            engines[(model, eid)] = snap
        if len(ids) == 1:
            models[model] = engines[(model, ids[0])]
        else:  # several engines (data parallel), or only engine-less series
            config = next((cache_configs[e] for e in ids if e in cache_configs), None)
            all_accs = [by_engine[e] for e in ids] + extra
            models[model] = _snapshot(model, tuple(ids), at, all_accs, config, lora)
    return MetricsPage(at=at, models=_ro(models), engines=_ro(engines), families=_ro(dict(families)))


def _engine_order(engine: str) -> tuple[int, str]:
    return (len(engine), engine)  # "2" before "10"


def _acc(accs: _Accs, labels: Mapping[str, str]) -> _Acc | None:
    model = labels.get("model_name")
    if model is None:
        return None
    by_engine = accs.get(model)
    if by_engine is None:
        by_engine = accs[model] = {}
    engine = labels.get("engine")
    acc = by_engine.get(engine)
    if acc is None:
        acc = by_engine[engine] = _Acc()
    return acc


def _add_labeled(acc: _Acc, short: str, labels: Mapping[str, str], value: float) -> None:
    key = labels.get(_BY_LABEL[short], "")
    by = acc.labeled.setdefault(short, {})
    by[key] = by.get(key, 0.0) + value


def _read_counter(fam: Family, short: str, accs: _Accs) -> None:
    split = short in _BY_LABEL
    for s in fam.samples:
        acc = _acc(accs, s.labels)
        if acc is None:
            continue
        acc.counters[short] = acc.counters.get(short, 0.0) + s.value
        if split:
            _add_labeled(acc, short, s.labels, s.value)


def _read_gauge(fam: Family, short: str, accs: _Accs) -> None:
    if short not in _BY_LABEL and short not in _SUMMED_GAUGES and short != "kv_cache_usage_perc":
        return  # e.g. the *_created timestamps: generic access only
    for s in fam.samples:
        acc = _acc(accs, s.labels)
        if acc is None:
            continue
        if short == "kv_cache_usage_perc":
            acc.kv_usage.append(s.value)
        elif short in _BY_LABEL:
            _add_labeled(acc, short, s.labels, s.value)
        else:
            acc.gauges[short] = acc.gauges.get(short, 0.0) + s.value


def _read_histogram(fam: Family, short: str, accs: _Accs) -> None:
    bucket, sum_name, count_name = fam.name + "_bucket", fam.name + "_sum", fam.name + "_count"
    for s in fam.samples:
        acc = _acc(accs, s.labels)
        if acc is None:
            continue
        h = acc.hists.get(short)
        if h is None:
            h = acc.hists[short] = _HistAcc()
        if s.name == bucket:
            le_text = s.labels.get("le")
            if le_text is not None:  # a bucket without a bound cannot be placed: dropped
                le = float(le_text)
                h.buckets[le] = h.buckets.get(le, 0.0) + s.value
        elif s.name == sum_name:
            h.sum += s.value
        elif s.name == count_name:
            h.count += s.value


def _read_cache_configs(fam: Family) -> dict[str, CacheConfig]:
    out: dict[str, CacheConfig] = {}
    for s in fam.samples:
        labels = s.labels
        out[labels.get("engine", "")] = CacheConfig(
            block_size=_int(labels.get("block_size")),
            num_gpu_blocks=_int(labels.get("num_gpu_blocks")),
            kv_cache_size_tokens=_int(labels.get("kv_cache_size_tokens")),
            labels=labels,
        )
    return out


def _read_lora(fam: Family) -> LoraInfo | None:
    if not fam.samples:
        return None
    newest = max(fam.samples, key=lambda s: s.value if not math.isnan(s.value) else -math.inf)
    labels = newest.labels
    return LoraInfo(
        max_loras=_int(labels.get("max_lora")),
        running=_names(labels.get("running_lora_adapters", "")),
        waiting=_names(labels.get("waiting_lora_adapters", "")),
        updated_at=newest.value,
    )


def _names(csv: str) -> tuple[str, ...]:
    return tuple(n for n in csv.split(",") if n)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None  # vLLM writes "None" for unset values


def _snapshot(
    model: str,
    engines: tuple[str, ...],
    at: float,
    accs: list[_Acc],
    cache_config: CacheConfig | None,
    lora: LoraInfo | None,
) -> ModelMetrics:
    gauges = _sum_dicts(a.gauges for a in accs)
    kv = [v for a in accs for v in a.kv_usage]
    labeled = {short: _sum_dicts(a.labeled.get(short, {}) for a in accs) for short in _BY_LABEL}
    sleep = [a.labeled["engine_sleep_state"] for a in accs if "engine_sleep_state" in a.labeled]
    return ModelMetrics(
        model_name=model,
        engines=engines,
        at=at,
        num_requests_running=gauges.get("num_requests_running"),
        num_requests_waiting=gauges.get("num_requests_waiting"),
        waiting_by_reason=_ro(labeled["num_requests_waiting_by_reason"]),
        kv_cache_usage=sum(kv) / len(kv) if kv else None,
        sleep_states=_ro(_min_dicts(sleep)),
        cache_config=cache_config,
        lora=lora,
        counters=_ro(_sum_dicts(a.counters for a in accs)),
        request_success=_ro(labeled["request_success"]),
        admission_rejections=_ro(labeled["admission_rejections"]),
        histograms=_ro(_histograms(accs)),
    )


def _ro(d: dict[KK, VV]) -> Mapping[KK, VV]:
    """Snapshots are frozen all the way down: their mappings are read-only views."""
    return MappingProxyType(d)


def _sum_dicts(dicts: Iterable[Mapping[K, float]]) -> dict[K, float]:
    out: dict[K, float] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _min_dicts(dicts: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the smallest value over the engines: a state holds only when all are in it."""
    if len(dicts) == 1:
        return dict(dicts[0])
    keys = {k for d in dicts for k in d}
    return {k: min(d.get(k, 0.0) for d in dicts) for k in keys}


def _histograms(accs: list[_Acc]) -> dict[str, Histogram]:
    names = {name for a in accs for name in a.hists}
    out: dict[str, Histogram] = {}
    for name in names:
        parts = [a.hists[name] for a in accs if name in a.hists]
        buckets = _sum_dicts(p.buckets for p in parts)
        out[name] = Histogram(
            buckets=tuple(sorted(buckets.items())),
            sum=sum(p.sum for p in parts),
            count=sum(p.count for p in parts),
        )
    return out
