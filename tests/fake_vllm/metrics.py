"""The fake's /metrics: the real vLLM 0.32 family names, labels and histogram buckets.

Built with prometheus_client, as vLLM itself is, so the text format (``_total``, ``_created``,
``_bucket``/``_sum``/``_count``) is byte-for-byte the same kind of page. Only the subset the
project reads is kept up to date by traffic; the rest exist with their real names.
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "FakeMetrics"]

LABELS = ("engine", "model_name")
SLEEP_STATES = ("awake", "weights_offloaded", "discard_all")
FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")

# Bucket boundaries as real vLLM 0.32.0 exposes them (captured on this machine).
_TTFT = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
_ITL = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
_PHASE = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
_TOKENS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)

_HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "time_to_first_token_seconds": ("Histogram of time to first token in seconds.", _TTFT),
    "inter_token_latency_seconds": ("Histogram of inter-token latency in seconds.", _ITL),
    "request_time_per_output_token_seconds": (
        "Histogram of time_per_output_token_seconds per request.",
        _ITL,
    ),
    "e2e_request_latency_seconds": ("Histogram of e2e request latency in seconds.", _PHASE),
    "request_queue_time_seconds": ("Histogram of time spent in WAITING phase for request.", _PHASE),
    "request_inference_time_seconds": ("Histogram of time spent in RUNNING phase for request.", _PHASE),
    "request_prefill_time_seconds": ("Histogram of time spent in PREFILL phase for request.", _PHASE),
    "request_decode_time_seconds": ("Histogram of time spent in DECODE phase for request.", _PHASE),
    "request_prompt_tokens": ("Number of prefill tokens processed.", _TOKENS),
    "request_generation_tokens": ("Number of generation tokens processed.", _TOKENS),
    "request_params_max_tokens": ("Histogram of the max_tokens request parameter.", _TOKENS),
    "request_params_n": ("Histogram of the n request parameter.", _TOKENS),
}


class FakeMetrics:
    """One model's series (labels engine="0", model_name=<served name>)."""

    def __init__(self, model_name: str, *, kv_cache_tokens: int, max_loras: int | None) -> None:
        self.registry = reg = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            reg.register(collector)
        lv = ("0", model_name)
        self.kv_cache_tokens = kv_cache_tokens

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(f"vllm:{name}", doc, LABELS, registry=reg).labels(*lv)

        def counter(name: str, doc: str) -> Counter:
            return Counter(f"vllm:{name}", doc, LABELS, registry=reg).labels(*lv)

        self.running = gauge("num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("num_requests_waiting", "Number of requests waiting to be processed.")
        by_reason = Gauge(
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason.",
            (*LABELS, "reason"),
            registry=reg,
        )
        for reason in ("capacity", "deferred"):
            by_reason.labels(*lv, reason)
        sleep = Gauge(
            "vllm:engine_sleep_state",
            "Engine sleep state; awake = 0 means engine is sleeping.",
            (*LABELS, "sleep_state"),
            registry=reg,
        )
        self.sleep_state = {s: sleep.labels(*lv, s) for s in SLEEP_STATES}
        self.kv_usage = gauge("kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.prefix_queries = counter("prefix_cache_queries", "Prefix cache queries, in tokens.")
        self.prefix_hits = counter("prefix_cache_hits", "Prefix cache hits, in tokens.")
        counter("num_preemptions", "Cumulative number of preemption from the engine.")
        rejections = Counter(
            "vllm:admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            ("model_name", "reason"),  # no engine label: the API server counts these
            registry=reg,
        )
        for reason in ("max_num_queued_reqs", "max_num_queued_tokens"):
            rejections.labels(model_name, reason)
        self.prompt_tokens = counter("prompt_tokens", "Number of prefill tokens processed.")
        counter("prompt_tokens_cached", "Number of cached prompt tokens (local + external).")
        self.generation_tokens = counter("generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            ("engine", "finished_reason", "model_name"),
            registry=reg,
        )
        self.success = {r: success.labels("0", r, model_name) for r in FINISHED_REASONS}
        self.hist = {
            name: Histogram(f"vllm:{name}", doc, LABELS, buckets=b, registry=reg).labels(*lv)
            for name, (doc, b) in _HISTOGRAMS.items()
        }
        self._cache_info(reg, kv_cache_tokens)
        # With LoRA on, real vLLM declares this family at start but writes its one sample (value:
        # a timestamp) only once the engine has logged stats, i.e. after the first request.
        self._lora_info: Gauge | None = None
        self._max_loras = str(max_loras)
        if max_loras is not None:
            self._lora_info = Gauge(
                "vllm:lora_requests_info",
                "Running stats on lora requests.",
                ("max_lora", "running_lora_adapters", "waiting_lora_adapters"),
                registry=reg,
            )
        self.set_sleep_level(None)

    @staticmethod
    def _cache_info(reg: CollectorRegistry, kv_cache_tokens: int) -> None:
        labels = {
            "block_size": "128",
            "cache_dtype": "auto",
            "enable_prefix_caching": "True",
            "engine": "0",
            "kv_cache_size_tokens": str(kv_cache_tokens),
            "num_gpu_blocks": str(kv_cache_tokens // 128),
        }
        info = Gauge(
            "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", tuple(labels), registry=reg
        )
        info.labels(**labels).set(1)

    def set_sleep_level(self, level: int | None) -> None:
        """None = awake. Level 0 pauses only: every state reads 0, as on real vLLM."""
        self.sleep_state["awake"].set(1 if level is None else 0)
        self.sleep_state["weights_offloaded"].set(1 if level == 1 else 0)
        self.sleep_state["discard_all"].set(1 if level == 2 else 0)

    def set_load(self, running: int, tokens_in_flight: int) -> None:
        self.running.set(running)
        self.kv_usage.set(min(1.0, tokens_in_flight / max(1, self.kv_cache_tokens)))

    def observe_request(
        self, *, prompt: int, generated: int, max_tokens: int, reason: str, ttft: float, e2e: float
    ) -> None:
        if self._lora_info is not None:
            self._lora_info.labels(self._max_loras, "", "").set(time.time())
        self.prompt_tokens.inc(prompt)
        self.prefix_queries.inc(prompt)
        self.generation_tokens.inc(generated)
        self.success[reason].inc()
        h = self.hist
        h["time_to_first_token_seconds"].observe(ttft)
        h["e2e_request_latency_seconds"].observe(e2e)
        h["request_inference_time_seconds"].observe(e2e)
        h["request_prefill_time_seconds"].observe(ttft)
        h["request_decode_time_seconds"].observe(max(0.0, e2e - ttft))
        h["request_queue_time_seconds"].observe(0.0)
        per_token = (e2e - ttft) / max(1, generated - 1)
        h["request_time_per_output_token_seconds"].observe(per_token)
        for _ in range(max(0, generated - 1)):
            h["inter_token_latency_seconds"].observe(per_token)
        h["request_prompt_tokens"].observe(prompt)
        h["request_generation_tokens"].observe(generated)
        h["request_params_max_tokens"].observe(max_tokens)
        h["request_params_n"].observe(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
