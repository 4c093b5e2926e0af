"""The parser on the test bed's live /metrics: guards against the installed vLLM drifting from
the captured fixtures (a renamed family, a new label layout)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.engine.test_metrics_parse import assert_same_as_oracle
from tests.testbed import RunningVllm
from vllm_mcp.engine.metrics import KNOWN_HISTOGRAMS, derive, parse_metrics


@pytest.mark.vllm
def test_live_metrics_parse_like_the_oracle_and_move_with_a_request(real_vllm: RunningVllm) -> None:
    with httpx.Client(base_url=real_vllm.base_url, timeout=60.0) as client:
        before_text = client.get("/metrics").text
        before = parse_metrics(before_text, at=time.monotonic())
        body = {"model": real_vllm.served_name, "prompt": "the model loads weights", "max_tokens": 8}
        assert client.post("/v1/completions", json=body).status_code == 200
        after_text = client.get("/metrics").text
        after = parse_metrics(after_text, at=time.monotonic())

    assert_same_as_oracle(after_text)
    m = after.models[real_vllm.served_name]
    assert m.engines == ("0",)
    assert m.cache_config is not None
    assert m.cache_config.block_size
    assert set(KNOWN_HISTOGRAMS) <= set(m.histograms)
    stats = derive(before.models[real_vllm.served_name], m)
    assert (stats.requests_per_s or 0) > 0
    assert (stats.generation_tokens_per_s or 0) > 0
    e2e = stats.histograms["e2e_request_latency_seconds"]
    assert e2e.count >= 1
    assert e2e.p50 is not None
