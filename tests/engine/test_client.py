"""VllmClient against httpx.MockTransport: request shapes, parsing and every error translation.

The bodies below are the ones real vLLM 0.32.0 sent on this machine (see FACTS.md and the
real-engine tier in test_client_vllm.py / test_contract.py, which keep them honest).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vllm_mcp.engine import KEEPALIVE_EXPIRY_S, ModelCard, VllmClient, vllm_error_message
from vllm_mcp.errors import InvalidRequest, UpstreamError, UpstreamHTTPError, UpstreamUnavailable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(10)]

BASE = "http://vllm.test:8200"
Handler = Callable[[httpx.Request], httpx.Response]


def vllm_error(status: int, message: str, type_: str = "BadRequestError") -> httpx.Response:
    """vLLM 0.32's error body."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": status}}
    return httpx.Response(status, json=body)


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    def client(self, **kw: Any) -> VllmClient:
        return VllmClient(BASE, transport=httpx.MockTransport(self), **kw)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


# -- request shapes and parsing -----------------------------------------------------------------


async def test_health_is_true_only_for_200() -> None:
    async with Recorder(httpx.Response(200)).client() as vllm:
        assert await vllm.health() is True
    async with Recorder(httpx.Response(503)).client() as vllm:
        assert await vllm.health() is False


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("gone")],
)
async def test_health_never_raises_for_a_down_server(failure: Exception) -> None:
    async with Recorder(failure).client() as vllm:
        assert await vllm.health() is False


async def test_models_parses_base_model_and_adapter_cards() -> None:
    body = {
        "object": "list",
        "data": [
            {"id": "tiny", "object": "model", "root": "/m/tiny", "parent": None, "max_model_len": 2048},
            {"id": "ad1", "object": "model", "root": "/l/ad1", "parent": "tiny", "max_model_len": None},
        ],
    }
    rec = Recorder(httpx.Response(200, json=body))
    async with rec.client() as vllm:
        cards = await vllm.models()
    assert rec.last.url.path == "/v1/models"
    assert cards == [
        ModelCard(id="tiny", root="/m/tiny", parent=None, max_model_len=2048),
        ModelCard(id="ad1", root="/l/ad1", parent="tiny", max_model_len=None),
    ]


async def test_simple_getters_read_their_fields() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        bodies: dict[str, Any] = {
            "/version": {"version": "0.32.0"},
            "/load": {"server_load": 3},
            "/is_sleeping": {"is_sleeping": True},
            "/server_info": {"vllm_config": "model='x'", "vllm_env": {}, "system_env": {}},
        }
        if request.url.path == "/metrics":
            return httpx.Response(200, text="vllm:num_requests_running 0.0\n")
        return httpx.Response(200, json=bodies[request.url.path])

    async with Recorder(answer).client() as vllm:
        assert await vllm.version() == "0.32.0"
        assert await vllm.load() == 3
        assert await vllm.is_sleeping() is True
        assert (await vllm.server_info())["vllm_config"] == "model='x'"
        assert (await vllm.metrics_text()).startswith("vllm:num_requests_running")


async def test_sleep_sends_level_and_rejects_unknown_levels_without_a_request() -> None:
    rec = Recorder(httpx.Response(200, json={"status": "sleeping", "level": 2}))
    async with rec.client() as vllm:
        await vllm.sleep(2)
        assert (rec.last.method, rec.last.url.path, rec.last.url.params["level"]) == ("POST", "/sleep", "2")
        with pytest.raises(InvalidRequest, match="sleep level"):
            await vllm.sleep(3)
    assert len(rec.requests) == 1


async def test_wake_up_repeats_tags_and_sends_none_by_default() -> None:
    rec = Recorder(httpx.Response(200, json={"status": "awake", "tags": None}))
    async with rec.client() as vllm:
        await vllm.wake_up()
        assert rec.last.url.path == "/wake_up"
        assert "tags" not in rec.last.url.params
        await vllm.wake_up(["weights", "kv_cache"])
    assert rec.last.url.params.get_list("tags") == ["weights", "kv_cache"]


async def test_collective_rpc_posts_method_args_kwargs_and_returns_results() -> None:
    rec = Recorder(httpx.Response(200, json={"results": [None]}))
    async with rec.client() as vllm:
        assert await vllm.collective_rpc("reload_weights", [1], {"x": 2}) == [None]
    assert json.loads(rec.last.content) == {"method": "reload_weights", "args": [1], "kwargs": {"x": 2}}


async def test_reset_prefix_cache_posts() -> None:
    rec = Recorder(httpx.Response(200, json={"success": True}))
    async with rec.client() as vllm:
        await vllm.reset_prefix_cache()
    assert (rec.last.method, rec.last.url.path) == ("POST", "/reset_prefix_cache")


async def test_lora_calls_return_vllms_plain_text() -> None:
    # vLLM answers these with text and no content-type at all.
    rec = Recorder(
        httpx.Response(200, content=b"Success: LoRA adapter 'ad1' added successfully."),
        httpx.Response(200, content=b"Success: LoRA adapter 'ad1' removed successfully."),
    )
    async with rec.client() as vllm:
        assert await vllm.load_lora("ad1", "/l/ad1") == "Success: LoRA adapter 'ad1' added successfully."
        assert json.loads(rec.last.content) == {"lora_name": "ad1", "lora_path": "/l/ad1"}
        assert (await vllm.unload_lora("ad1")).startswith("Success:")
        assert rec.last.url.path == "/v1/unload_lora_adapter"
    assert json.loads(rec.last.content) == {"lora_name": "ad1"}


async def test_tokenize_and_completion_shapes() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"count": 2, "max_model_len": 2048, "tokens": [386, 418]})
        return httpx.Response(200, json={"object": "text_completion", "choices": [{"text": "op"}]})

    rec = Recorder(answer)
    async with rec.client() as vllm:
        assert await vllm.tokenize("tiny", "hello world") == [386, 418]
        out = await vllm.completion("tiny", "hi", max_tokens=4, temperature=0)
    assert out["choices"][0]["text"] == "op"
    sent = json.loads(rec.last.content)
    assert sent == {"model": "tiny", "prompt": "hi", "max_tokens": 4, "temperature": 0}


async def test_api_key_is_sent_as_bearer_only_when_given() -> None:
    rec = Recorder(httpx.Response(200, json={"version": "0.32.0"}))
    async with rec.client(api_key="sekrit") as vllm:
        await vllm.version()
    assert rec.last.headers["authorization"] == "Bearer sekrit"
    async with rec.client() as vllm:
        await vllm.version()
    assert "authorization" not in rec.last.headers


async def test_timeouts_default_per_client_and_override_per_call() -> None:
    rec = Recorder(httpx.Response(200, json={"version": "0.32.0", "server_load": 0}))
    async with rec.client(timeout=7.0) as vllm:
        await vllm.version()
        assert rec.last.extensions["timeout"]["read"] == 7.0
        await vllm.load(timeout=0.5)
        assert rec.last.extensions["timeout"]["read"] == 0.5


# -- HTTP error translation ---------------------------------------------------------------------


async def call(answer: httpx.Response, op: Callable[[VllmClient], Any]) -> UpstreamHTTPError:
    async with Recorder(answer).client() as vllm:
        with pytest.raises(UpstreamHTTPError) as info:
            await op(vllm)
    return info.value


async def test_unknown_model_404_carries_vllms_message_url_and_hint() -> None:
    msg = "The model `nope` does not exist. Valid aliases: tiny."
    err = await call(vllm_error(404, msg, "NotFoundError"), lambda v: v.completion("nope", "hi"))
    assert err.status == 404
    assert msg in err.message
    assert "completion" in err.message
    assert err.context["url"] == BASE + "/v1/completions"
    assert err.context["vllm_type"] == "NotFoundError"
    assert "served name" in err.hint


async def test_over_long_prompt_400_says_to_shorten() -> None:
    msg = "This model's maximum context length is 2048 tokens. However, your prompt contains 2049"
    err = await call(vllm_error(400, msg), lambda v: v.completion("tiny", "x"))
    assert err.status == 400
    assert "Shorten the prompt" in err.hint


async def test_adapter_loaded_twice_400_says_unload_first() -> None:
    msg = "The lora adapter 'ad1' has already been loaded. If you want to load the adapter in place…"
    err = await call(vllm_error(400, msg, "InvalidUserInput"), lambda v: v.load_lora("ad1", "/l"))
    assert (err.status, err.context["operation"]) == (400, "load_lora")
    assert "unload it first" in err.hint


async def test_unknown_adapter_unload_404_says_list_adapters() -> None:
    msg = "The lora adapter 'ad1' cannot be found."
    err = await call(vllm_error(404, msg, "NotFoundError"), lambda v: v.unload_lora("ad1"))
    assert err.status == 404
    assert "No adapter by that name" in err.hint


async def test_bad_adapter_path_404_says_point_at_adapter_folder() -> None:
    msg = "Loading lora ad2 failed: No adapter found for /nonexist"
    err = await call(vllm_error(404, msg, "NotFoundError"), lambda v: v.load_lora("ad2", "/nonexist"))
    assert "adapter_config.json" in err.hint


async def test_lora_not_enabled_500_says_enable_lora() -> None:
    msg = "Call to add_lora method failed: Worker failed with error 'LoRA is not enabled. Use --enable-lora…'"
    err = await call(vllm_error(500, msg, "InternalServerError"), lambda v: v.load_lora("a", "/l"))
    assert err.status == 500
    assert "--enable-lora" in err.hint


async def test_failed_collective_rpc_500_names_the_method() -> None:
    msg = "Call to collective_rpc method failed: Worker failed with error ''CPUWorker' object has no…"
    err = await call(vllm_error(500, msg, "InternalServerError"), lambda v: v.collective_rpc("nope"))
    assert "method name" in err.hint


async def test_older_object_error_shape_is_understood() -> None:
    body = {
        "object": "error",
        "message": "The model `x` does not exist.",
        "type": "NotFoundError",
        "code": 404,
    }
    err = await call(httpx.Response(404, json=body), lambda v: v.tokenize("x", "hi"))
    assert err.context["vllm_message"] == "The model `x` does not exist."
    assert err.context["vllm_type"] == "NotFoundError"


async def test_api_key_401_says_pass_the_key() -> None:
    err = await call(httpx.Response(401, json={"error": "Unauthorized"}), lambda v: v.models())
    assert (err.status, err.context["vllm_message"]) == (401, "Unauthorized")
    assert "--api-key" in err.hint


@pytest.mark.parametrize(
    ("op", "needle"),
    [
        (lambda v: v.sleep(1), "VLLM_SERVER_DEV_MODE=1"),
        (lambda v: v.load_lora("a", "/l"), "VLLM_ALLOW_RUNTIME_LORA_UPDATING"),
        (lambda v: v.version(), "does not serve that endpoint"),
    ],
)
async def test_unknown_route_404_says_which_switch_enables_it(op: Any, needle: str) -> None:
    err = await call(httpx.Response(404, json={"detail": "Not Found"}), op)
    assert needle in err.hint


async def test_overloaded_503_says_retry_and_plain_text_body_is_kept() -> None:
    err = await call(httpx.Response(503, text="upstream overloaded"), lambda v: v.models())
    assert err.context["vllm_message"] == "upstream overloaded"
    assert "retry" in err.hint


def test_error_message_of_an_empty_body_falls_back_to_the_reason() -> None:
    assert vllm_error_message(httpx.Response(502)) == ("Bad Gateway", None)


async def test_a_non_vllm_answer_is_an_upstream_error_not_a_crash() -> None:
    async with Recorder(httpx.Response(200, text="<html>hello</html>")).client() as vllm:
        with pytest.raises(UpstreamError, match="unexpected answer to version") as info:
            await vllm.version()
    assert not isinstance(info.value, UpstreamHTTPError)
    assert "supported version" in info.value.hint


# -- transport failures and the one retry ------------------------------------------------------


async def test_refused_connection_is_unavailable_and_not_retried() -> None:
    rec = Recorder(httpx.ConnectError("[Errno 111] Connection refused"))
    async with rec.client() as vllm:
        with pytest.raises(UpstreamUnavailable, match="did not answer models") as info:
            await vllm.models()
    assert len(rec.requests) == 1
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert info.value.context["url"] == BASE + "/v1/models"


async def test_timeout_is_unavailable_and_says_how_long() -> None:
    rec = Recorder(httpx.ReadTimeout("timed out"))
    async with rec.client() as vllm:
        with pytest.raises(UpstreamUnavailable, match=r"no answer within 2\.5 s"):
            await vllm.is_sleeping(timeout=2.5)
    assert len(rec.requests) == 1


@pytest.mark.parametrize(
    "dead",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.WriteError("[Errno 32] Broken pipe"),
    ],
)
async def test_a_dead_connection_is_retried_once(dead: Exception) -> None:
    rec = Recorder(dead, httpx.Response(200, json={"version": "0.32.0"}))
    async with rec.client() as vllm:
        assert await vllm.version() == "0.32.0"
    assert len(rec.requests) == 2


async def test_a_connection_dying_twice_is_unavailable() -> None:
    rec = Recorder(httpx.RemoteProtocolError("Server disconnected without sending a response."))
    async with rec.client() as vllm:
        with pytest.raises(UpstreamUnavailable, match="closed twice"):
            await vllm.version()
    assert len(rec.requests) == 2


def test_default_keepalive_expiry_is_well_under_vllms_five_seconds() -> None:
    assert 0 < KEEPALIVE_EXPIRY_S <= 2.5
