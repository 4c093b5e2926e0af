"""Typed snapshots: on the captured pages every typed value equals what the oracle reads from
the same page; synthetic pages cover engines, missing families and the LoRA info series."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vllm_mcp.engine.metrics import KNOWN_HISTOGRAMS, ModelMetrics, parse_metrics

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "metrics"
PAGES = sorted(FIXTURES.glob("vllm-*.txt"))


def page_text(kind: str) -> str:
    (path,) = FIXTURES.glob(f"vllm-*-{kind}.txt")
    return path.read_text()


def oracle_values(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((dict(s.labels), float(s.value)))
    return out


def one(values: list[tuple[dict[str, str], float]], **labels: str) -> float:
    (value,) = [v for lab, v in values if all(lab.get(k) == x for k, x in labels.items())]
    return value


def snap(kind: str) -> ModelMetrics:
    return parse_metrics(page_text(kind), at=100.0).models["tiny"]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_typed_values_equal_the_oracle_on_captured_pages(page: Path) -> None:
    text = page.read_text()
    o = oracle_values(text)
    m = parse_metrics(text, at=100.0).models["tiny"]
    assert m.at == 100.0
    assert m.engines == ("0",)
    assert m.num_requests_running == one(o["vllm:num_requests_running"])
    assert m.num_requests_waiting == one(o["vllm:num_requests_waiting"])
    assert m.kv_cache_usage == one(o["vllm:kv_cache_usage_perc"])
    assert 0.0 <= (m.kv_cache_usage or 0.0) <= 1.0
    for reason, value in m.waiting_by_reason.items():
        assert value == one(o["vllm:num_requests_waiting_by_reason"], reason=reason)
    assert dict(m.sleep_states) == {lab["sleep_state"]: v for lab, v in o["vllm:engine_sleep_state"]}
    for name in (
        "prompt_tokens",
        "generation_tokens",
        "prompt_tokens_cached",
        "prefix_cache_queries",
        "prefix_cache_hits",
        "num_preemptions",
    ):
        assert getattr(m, name) == sum(v for _, v in o[f"vllm:{name}_total"]), name
    assert m.counters["prompt_tokens_by_source"] == sum(v for _, v in o["vllm:prompt_tokens_by_source_total"])
    assert dict(m.request_success) == {
        lab["finished_reason"]: v for lab, v in o["vllm:request_success_total"]
    }
    assert dict(m.admission_rejections) == {
        lab["reason"]: v for lab, v in o["vllm:admission_rejections_total"]
    }
    for name in KNOWN_HISTOGRAMS:
        h = m.histogram(name)
        assert h is not None, name
        expected = sorted((float(lab["le"]), v) for lab, v in o[f"vllm:{name}_bucket"])
        assert list(h.buckets) == expected
        assert h.buckets[-1][0] == math.inf
        assert h.sum == one(o[f"vllm:{name}_sum"])
        assert h.count == one(o[f"vllm:{name}_count"]) == h.buckets[-1][1]
    config = m.cache_config
    assert config is not None
    (cache_labels, _), *_ = o["vllm:cache_config_info"]
    assert config.block_size == int(cache_labels["block_size"])
    assert config.num_gpu_blocks == int(cache_labels["num_gpu_blocks"])
    assert dict(config.labels) == cache_labels


def test_the_loaded_page_shows_load() -> None:
    m = snap("loaded")
    assert (m.num_requests_running or 0) > 0
    assert (m.kv_cache_usage or 0) > 0
    assert m.histograms["time_to_first_token_seconds"].count > 0
    assert m.histograms["inter_token_latency_seconds"].count > 0
    assert m.sleep_state == "awake"
    assert m.is_sleeping is False


def test_the_asleep_page_reads_weights_offloaded() -> None:
    m = snap("asleep")
    assert m.sleep_state == "weights_offloaded"
    assert m.is_sleeping is True


def test_the_lora_page_names_the_running_adapter() -> None:
    lora = snap("lora").lora
    assert lora is not None
    assert lora.max_loras == 2
    assert "tiny-lora" in lora.running
    idle_lora = snap("idle").lora
    assert idle_lora is not None
    assert idle_lora.running == ()


def test_generic_families_keep_everything_else() -> None:
    page = parse_metrics(page_text("loaded"), at=0.0)
    fam = page.families["vllm:iteration_tokens_total"]
    assert fam.type == "histogram"
    assert {s.name for s in fam.samples} >= {"vllm:iteration_tokens_total_bucket"}
    assert "iteration_tokens_total" in page.models["tiny"].histograms
    created = page.samples("vllm:prompt_tokens_created")
    assert len(created) == 1
    assert created[0][0]["model_name"] == "tiny"
    assert "python_info" not in page.families


def test_level_zero_sleep_has_no_state_but_is_sleeping() -> None:
    text = "# TYPE vllm:engine_sleep_state gauge\n" + "".join(
        f'vllm:engine_sleep_state{{engine="0",model_name="m",sleep_state="{s}"}} 0.0\n'
        for s in ("awake", "weights_offloaded", "discard_all")
    )
    m = parse_metrics(text, at=0.0).models["m"]
    assert m.sleep_state is None
    assert m.is_sleeping is True


def test_missing_families_read_as_none_or_empty() -> None:
    text = '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine="0",model_name="m"} 3\n'
    m = parse_metrics(text, at=0.0).models["m"]
    assert m.num_requests_running == 3
    assert m.num_requests_waiting is None
    assert m.kv_cache_usage is None
    assert m.prompt_tokens is None
    assert m.sleep_state is None
    assert m.is_sleeping is None
    assert m.cache_config is None
    assert m.lora is None
    assert m.histograms == {}
    assert m.histogram("time_to_first_token_seconds") is None
    assert m.request_success == {}


DP_PAGE = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 2.0
vllm:num_requests_running{engine="1",model_name="m"} 3.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.2
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.4
# TYPE vllm:engine_sleep_state gauge
vllm:engine_sleep_state{engine="0",model_name="m",sleep_state="awake"} 1.0
vllm:engine_sleep_state{engine="0",model_name="m",sleep_state="weights_offloaded"} 0.0
vllm:engine_sleep_state{engine="1",model_name="m",sleep_state="awake"} 0.0
vllm:engine_sleep_state{engine="1",model_name="m",sleep_state="weights_offloaded"} 1.0
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="m"} 10.0
vllm:prompt_tokens_total{engine="1",model_name="m"} 5.0
# TYPE vllm:admission_rejections_total counter
vllm:admission_rejections_total{model_name="m",reason="max_num_queued_reqs"} 7.0
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="1.0",model_name="m"} 1.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 2.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 2.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 3.0
vllm:e2e_request_latency_seconds_bucket{engine="1",le="1.0",model_name="m"} 4.0
vllm:e2e_request_latency_seconds_bucket{engine="1",le="+Inf",model_name="m"} 4.0
vllm:e2e_request_latency_seconds_count{engine="1",model_name="m"} 4.0
vllm:e2e_request_latency_seconds_sum{engine="1",model_name="m"} 1.0
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",engine="1",num_gpu_blocks="100"} 1.0
vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="None"} 1.0
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 200.0
vllm:lora_requests_info{max_lora="4",running_lora_adapters="",waiting_lora_adapters="c"} 100.0
"""


def test_engines_are_snapshotted_apart_and_summed_per_model() -> None:
    page = parse_metrics(DP_PAGE, at=1.0)
    e0, e1, m = page.engines[("m", "0")], page.engines[("m", "1")], page.models["m"]
    assert m.engines == ("0", "1")
    assert (e0.num_requests_running, e1.num_requests_running, m.num_requests_running) == (2, 3, 5)
    assert m.kv_cache_usage == pytest.approx(0.3)
    assert (e0.sleep_state, e1.sleep_state, m.sleep_state) == ("awake", "weights_offloaded", None)
    assert m.is_sleeping is True
    assert (e0.prompt_tokens, m.prompt_tokens) == (10, 15)
    # engine-less series count once: in each engine and once in the model
    assert e0.admission_rejections == e1.admission_rejections == m.admission_rejections
    assert m.admission_rejections == {"max_num_queued_reqs": 7.0}
    h = m.histograms["e2e_request_latency_seconds"]
    assert h.buckets == ((1.0, 5.0), (math.inf, 6.0))
    assert (h.sum, h.count) == (4.0, 6.0)
    assert e1.cache_config is not None
    assert e1.cache_config.num_gpu_blocks == 100
    assert e0.cache_config is not None
    assert e0.cache_config.num_gpu_blocks is None  # vLLM writes "None"
    assert m.cache_config == e0.cache_config


def test_the_newest_lora_series_is_the_state() -> None:
    lora = parse_metrics(DP_PAGE, at=1.0).models["m"].lora
    assert lora is not None
    assert (lora.max_loras, lora.running, lora.waiting, lora.updated_at) == (4, ("a", "b"), (), 200.0)


def test_snapshots_are_frozen() -> None:
    m = snap("idle")
    with pytest.raises(AttributeError):
        m.num_requests_running = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.histograms["x"] = m.histograms["request_prompt_tokens"]  # type: ignore[index]
