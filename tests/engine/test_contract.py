"""The vLLM contract: ONE set of assertions, run against real vLLM 0.32 and against the fake.

Everything the project relies on from vLLM's HTTP surface is pinned here: statuses, body
shapes, metric families and labels, sleep/wake semantics, LoRA plain-text answers, SSE framing
and error JSON. The fake (tests/fake_vllm) must pass exactly this test, so tests that use it for
faults are testing against something that behaves like the real engine.

Each test leaves the server as it found it (awake, no adapters): the real one is shared by the
whole session.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_vllm.launch import contract_server
from tests.testbed import RunningVllm, tiny_lora, tiny_model

pytestmark = pytest.mark.timeout(120)

MAX_MODEL_LEN = 2048
ADAPTER = "contract-lora"

# The vLLM families the project reads, by Prometheus type. Every one of these carries the labels
# ``engine`` and ``model_name`` (monitor and optimizer group by them).
RELIED_ON: dict[str, str] = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:num_requests_waiting_by_reason": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:engine_sleep_state": "gauge",
    "vllm:prompt_tokens": "counter",
    "vllm:prompt_tokens_cached": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:request_success": "counter",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
    "vllm:num_preemptions": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_inference_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
}


@pytest.fixture(scope="module", params=[pytest.param("real", marks=pytest.mark.vllm), "fake"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVllm]:
    with contract_server(request.param, request, tmp_path_factory.mktemp("contract")) as srv:
        yield srv


@pytest.fixture
def http(server: RunningVllm) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def assert_vllm_error(resp: httpx.Response, status: int, type_: str) -> str:
    """vLLM 0.32's error JSON; returns the message."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    err = resp.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}
    assert (err["code"], err["type"]) == (status, type_)
    assert isinstance(err["message"], str)
    return str(err["message"])


def sleep_gauges(http: httpx.Client) -> dict[str, float]:
    families = text_string_to_metric_families(http.get("/metrics").text)
    family = next(f for f in families if f.name == "vllm:engine_sleep_state")
    return {s.labels["sleep_state"]: s.value for s in family.samples}


def sse_events(resp: httpx.Response) -> list[str]:
    """The ``data:`` payloads of an SSE body; fails on any other non-empty line."""
    events = []
    for line in resp.text.split("\n"):
        if line:
            assert line.startswith("data: "), line
            events.append(line.removeprefix("data: "))
    return events


# -- identity -------------------------------------------------------------------------------------


def test_health_is_200_with_an_empty_body(http: httpx.Client) -> None:
    resp = http.get("/health")
    assert (resp.status_code, resp.content) == (200, b"")


def test_ping_and_load_answer(http: httpx.Client) -> None:
    assert http.get("/ping").status_code == 200
    assert http.get("/load").json() == {"server_load": 0}


def test_models_list_the_served_name_with_its_root_and_max_model_len(http: httpx.Client) -> None:
    body = http.get("/v1/models").json()
    assert body["object"] == "list"
    (card,) = body["data"]
    assert (card["id"], card["object"], card["owned_by"]) == ("tiny", "model", "vllm")
    assert (card["root"], card["parent"], card["max_model_len"]) == (str(tiny_model()), None, MAX_MODEL_LEN)


def test_version_is_0_32(http: httpx.Client) -> None:
    version = http.get("/version").json()["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert version == "0.32.0"


def test_unknown_route_is_fastapis_404(http: httpx.Client) -> None:
    resp = http.get("/no/such/route")
    assert (resp.status_code, resp.json()) == (404, {"detail": "Not Found"})


# -- metrics --------------------------------------------------------------------------------------


def test_metrics_have_the_families_we_rely_on_labelled_engine_and_model_name(http: httpx.Client) -> None:
    # One request first: some samples (lora_requests_info) appear only once the engine logged stats.
    assert http.post("/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 2}).is_success
    resp = http.get("/metrics")
    assert resp.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    for name, type_ in RELIED_ON.items():
        assert name in families, f"{name} missing"
        family = families[name]
        assert family.type == type_, name
        assert family.samples, name
        for sample in family.samples:
            assert sample.labels["model_name"] == "tiny", sample
            assert sample.labels["engine"] == "0", sample
    reasons = {s.labels["finished_reason"] for s in families["vllm:request_success"].samples}
    assert {"stop", "length", "abort"} <= reasons
    cache_config = families["vllm:cache_config_info"].samples[0].labels
    assert {"block_size", "num_gpu_blocks", "kv_cache_size_tokens", "engine"} <= set(cache_config)
    (lora_sample,) = families["vllm:lora_requests_info"].samples  # LoRA is enabled on both
    lora = lora_sample.labels
    assert (lora["max_lora"], lora["running_lora_adapters"]) == ("2", "")
    rejections = families["vllm:admission_rejections"].samples
    assert {s.labels["reason"] for s in rejections} >= {"max_num_queued_reqs", "max_num_queued_tokens"}


def test_inference_moves_the_token_counters(http: httpx.Client) -> None:
    def counter(name: str) -> float:
        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
        return sum(s.value for s in families[name].samples if s.name.endswith("_total"))

    before = counter("vllm:generation_tokens"), counter("vllm:request_success")
    assert http.post("/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 3}).is_success
    after = counter("vllm:generation_tokens"), counter("vllm:request_success")
    assert after[0] - before[0] >= 1
    assert after[1] - before[1] == 1


# -- sleep mode ------------------------------------------------------------------------------------


def test_sleep_level_1_then_wake(http: httpx.Client) -> None:
    try:
        resp = http.post("/sleep", params={"level": 1})
        assert (resp.status_code, resp.json()) == (200, {"status": "sleeping", "level": 1})
        assert http.get("/is_sleeping").json() == {"is_sleeping": True}
        assert sleep_gauges(http) == {"awake": 0.0, "weights_offloaded": 1.0, "discard_all": 0.0}
        assert http.get("/health").status_code == 200  # health stays 200 while asleep
        assert http.post("/sleep", params={"level": 1}).status_code == 200  # idempotent
    finally:
        resp = http.post("/wake_up")
    assert (resp.status_code, resp.json()) == (200, {"status": "awake", "tags": None})
    assert http.get("/is_sleeping").json() == {"is_sleeping": False}
    assert sleep_gauges(http) == {"awake": 1.0, "weights_offloaded": 0.0, "discard_all": 0.0}
    assert http.post("/wake_up").status_code == 200  # waking an awake engine is fine


def test_sleep_level_2_wakes_in_steps_with_reload_between(http: httpx.Client) -> None:
    try:
        assert http.post("/sleep", params={"level": 2}).json() == {"status": "sleeping", "level": 2}
        assert sleep_gauges(http)["discard_all"] == 1.0
        resp = http.post("/wake_up", params={"tags": "weights"})
        assert resp.json() == {"status": "sleeping", "tags": ["weights"]}
        assert http.get("/is_sleeping").json() == {"is_sleeping": True}
        rpc = http.post("/collective_rpc", json={"method": "reload_weights"})
        assert (rpc.status_code, rpc.json()) == (200, {"results": [None]})
        resp = http.post("/wake_up", params={"tags": "kv_cache"})
        assert resp.json() == {"status": "awake", "tags": ["kv_cache"]}
    finally:
        http.post("/wake_up")
    assert http.get("/is_sleeping").json() == {"is_sleeping": False}
    assert http.post("/reset_prefix_cache").json() == {"success": True}


def test_sleep_level_0_pauses_with_every_state_gauge_at_zero(http: httpx.Client) -> None:
    try:
        assert http.post("/sleep", params={"level": 0}).json() == {"status": "sleeping", "level": 0}
        assert sleep_gauges(http) == {"awake": 0.0, "weights_offloaded": 0.0, "discard_all": 0.0}
    finally:
        http.post("/wake_up")
    assert sleep_gauges(http)["awake"] == 1.0


def test_bad_sleep_level_and_unknown_rpc_are_refused(http: httpx.Client) -> None:
    resp = http.post("/sleep", params={"level": 7})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "query.level"
    assert http.get("/is_sleeping").json() == {"is_sleeping": False}
    msg = assert_vllm_error(http.post("/collective_rpc", json={"method": "nope"}), 500, "InternalServerError")
    assert "nope" in msg


@pytest.mark.anyio
async def test_requests_sent_while_asleep_are_held_until_wake(server: RunningVllm) -> None:
    body = {"model": "tiny", "prompt": "hello", "max_tokens": 2}
    answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:

        async def send() -> None:
            answers.append(await client.post("/v1/completions", json=body))

        (await client.post("/sleep", params={"level": 1})).raise_for_status()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                await anyio.sleep(1.0)
                assert not answers, "a request was answered while the engine slept"
                (await client.post("/wake_up")).raise_for_status()
        finally:
            await client.post("/wake_up")
    assert answers[0].status_code == 200


# -- LoRA -------------------------------------------------------------------------------------------


def test_lora_load_and_unload_answer_plain_text_and_show_in_models(http: httpx.Client) -> None:
    load = {"lora_name": ADAPTER, "lora_path": str(tiny_lora())}
    try:
        resp = http.post("/v1/load_lora_adapter", json=load)
        assert (resp.status_code, resp.text) == (
            200,
            f"Success: LoRA adapter '{ADAPTER}' added successfully.",
        )
        assert "json" not in resp.headers.get("content-type", "")
        cards = {c["id"]: c for c in http.get("/v1/models").json()["data"]}
        assert (cards[ADAPTER]["parent"], cards[ADAPTER]["root"]) == ("tiny", str(tiny_lora()))
        msg = assert_vllm_error(http.post("/v1/load_lora_adapter", json=load), 400, "InvalidUserInput")
        assert "already been loaded" in msg
        done = http.post("/v1/completions", json={"model": ADAPTER, "prompt": "hi", "max_tokens": 2})
        assert done.status_code == 200
    finally:
        resp = http.post("/v1/unload_lora_adapter", json={"lora_name": ADAPTER})
    assert (resp.status_code, resp.text) == (200, f"Success: LoRA adapter '{ADAPTER}' removed successfully.")
    again = http.post("/v1/unload_lora_adapter", json={"lora_name": ADAPTER})
    assert "cannot be found" in assert_vllm_error(again, 404, "NotFoundError")
    assert [c["id"] for c in http.get("/v1/models").json()["data"]] == ["tiny"]


def test_lora_from_a_path_without_an_adapter_is_404(http: httpx.Client, tmp_path: Path) -> None:
    resp = http.post("/v1/load_lora_adapter", json={"lora_name": "ghost", "lora_path": str(tmp_path)})
    assert "No adapter found" in assert_vllm_error(resp, 404, "NotFoundError")
    assert [c["id"] for c in http.get("/v1/models").json()["data"]] == ["tiny"]


# -- inference ---------------------------------------------------------------------------------------


def test_completion_shape(http: httpx.Client) -> None:
    body = http.post("/v1/completions", json={"model": "tiny", "prompt": "hello", "max_tokens": 4}).json()
    assert (body["object"], body["model"]) == ("text_completion", "tiny")
    assert body["id"].startswith("cmpl-")
    (choice,) = body["choices"]
    assert isinstance(choice["text"], str)
    assert choice["finish_reason"] in ("length", "stop")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 1 <= usage["completion_tokens"] <= 4


def test_chat_completion_shape(http: httpx.Client) -> None:
    payload = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    body = http.post("/v1/chat/completions", json=payload).json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert isinstance(message["content"], str)
    assert body["usage"]["prompt_tokens"] > 0


def test_streaming_completion_is_sse_ending_in_done_with_usage(http: httpx.Client) -> None:
    payload = {
        "model": "tiny",
        "prompt": "hello",
        "max_tokens": 3,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    resp = http.post("/v1/completions", json=payload)
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    events = sse_events(resp)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] <= 3
    finishes = [c["choices"][0]["finish_reason"] for c in chunks[:-1]]
    assert finishes[-1] in ("length", "stop")
    assert all(f is None for f in finishes[:-1])


def test_streaming_chat_opens_with_the_assistant_role(http: httpx.Client) -> None:
    payload = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "stream": True,
    }
    events = sse_events(http.post("/v1/chat/completions", json=payload))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("length", "stop")


def test_tokenize_counts_tokens(http: httpx.Client) -> None:
    body = http.post("/tokenize", json={"model": "tiny", "prompt": "hello world"}).json()
    assert body["count"] == len(body["tokens"]) > 0
    assert body["max_model_len"] == MAX_MODEL_LEN
    assert all(isinstance(t, int) for t in body["tokens"])


# -- errors ------------------------------------------------------------------------------------------


UNKNOWN_MODEL_CALLS = {
    "/v1/completions": {"prompt": "hi"},
    "/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
    "/tokenize": {"prompt": "hi"},
}


@pytest.mark.parametrize("path", list(UNKNOWN_MODEL_CALLS))
def test_unknown_model_is_404_error_json(http: httpx.Client, path: str) -> None:
    payload = {"model": "no-such-model", **UNKNOWN_MODEL_CALLS[path]}
    msg = assert_vllm_error(http.post(path, json=payload), 404, "NotFoundError")
    assert "`no-such-model` does not exist" in msg


def test_over_long_prompt_is_400_error_json(http: httpx.Client) -> None:
    started = time.monotonic()
    resp = http.post("/v1/completions", json={"model": "tiny", "prompt": "a b " * 1500, "max_tokens": 4})
    assert "maximum context length is 2048 tokens" in assert_vllm_error(resp, 400, "BadRequestError")
    assert time.monotonic() - started < 20


def test_too_many_output_tokens_is_400_error_json(http: httpx.Client) -> None:
    resp = http.post("/v1/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 4000})
    assert "cannot be greater than max_model_len=2048" in assert_vllm_error(resp, 400, "BadRequestError")
