"""The fake's HTTP surface: the vLLM 0.32 endpoints the project uses, same shapes and statuses.

Every body here mirrors what real vLLM 0.32.0 sent on this machine; tests/engine/test_contract.py
runs one set of assertions against both, so a drift shows up as a red contract test.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fake_vllm.engine import VERSION, FakeEngine, chat_prompt, generated_piece, tokenize
from tests.fake_vllm.logs import vlog
from tests.fake_vllm.metrics import CONTENT_TYPE_LATEST

Handler = Callable[[Request], Awaitable[Response]]
CRASH_AFTER_CHUNKS = 2
FINGERPRINT = f"vllm-{VERSION}-fake0000"


def error(status: int, message: str, type_: str, param: str | None = None) -> JSONResponse:
    """vLLM 0.32's error body."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def bad_request(message: str, param: str | None = None) -> JSONResponse:
    return error(400, message, "BadRequestError", param)


class BodyError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise BodyError(error(400, f"JSON decode error: {exc}", "Bad Request")) from exc
    if not isinstance(body, dict):
        raise BodyError(error(400, "the request body must be a JSON object", "Bad Request"))
    return body


def missing_field(name: str) -> JSONResponse:
    detail = f"{{'type': 'missing', 'loc': 'body.{name}', 'msg': 'Field required'}}"
    return error(400, f"1 validation error:\n  {detail}", "Bad Request", f"body.{name}")


def build_app(engine: FakeEngine) -> Starlette:
    cfg, faults = engine.cfg, engine.cfg.faults
    rng = random.Random(0)  # noqa: S311 - seeded on purpose: the same requests fail every run

    def guarded(handler: Handler) -> Handler:
        """vLLM's --api-key guard (``/v1/*`` only: ``{"error": "Unauthorized"}``), and bad bodies."""

        async def wrapped(request: Request) -> Response:
            v1 = request.url.path.startswith("/v1")
            if v1 and cfg.api_key and request.headers.get("authorization") != f"Bearer {cfg.api_key}":
                return JSONResponse({"error": "Unauthorized"}, status_code=401)
            try:
                return await handler(request)
            except BodyError as exc:
                return exc.response

        return wrapped

    async def health(_: Request) -> Response:
        return Response(status_code=503 if faults.hang else 200)

    async def ping(_: Request) -> Response:
        return Response(status_code=200)

    async def models(_: Request) -> Response:
        now = int(time.time())
        base = {
            "id": cfg.served_name,
            "object": "model",
            "created": now,
            "owned_by": "vllm",
            "root": cfg.model,
            "parent": None,
            "max_model_len": cfg.max_model_len,
            "permission": [],
        }
        cards = [base] + [
            {**base, "id": name, "root": path, "parent": cfg.served_name, "max_model_len": None}
            for name, path in engine.loras.items()
        ]
        return JSONResponse({"object": "list", "data": cards})

    async def version(_: Request) -> Response:
        return JSONResponse({"version": VERSION})

    async def load(_: Request) -> Response:
        return JSONResponse({"server_load": engine.running})

    async def metrics(_: Request) -> Response:
        return Response(engine.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def server_info(_: Request) -> Response:
        config = f"model='{cfg.model}', served_model_name={cfg.served_name}, max_seq_len={cfg.max_model_len}"
        vllm_env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}
        return JSONResponse({"vllm_config": config, "vllm_env": vllm_env, "system_env": {"fake": True}})

    async def sleep(request: Request) -> Response:
        raw = request.query_params.get("level", "1")
        if raw not in ("0", "1", "2"):
            detail = (
                f"{{'type': 'less_than_equal', 'loc': 'query.level', 'input': {raw!r}, 'ctx': {{'le': 2}}}}"
            )
            return error(400, f"1 validation error:\n  {detail}", "Bad Request", "query.level")
        started = time.perf_counter()
        engine.sleep(int(raw))
        vlog(
            f"It took {time.perf_counter() - started:.6f} seconds to fall asleep.",
            proc="EngineCore",
            src="abstract.py:390",
        )
        return JSONResponse({"status": "sleeping", "level": int(raw)})

    async def wake_up(request: Request) -> Response:
        tags = request.query_params.getlist("tags") or None
        started = time.perf_counter()
        engine.wake_up(tags)
        shown = tags if tags else {"kv_cache", "weights"}
        vlog(
            f"It took {time.perf_counter() - started:.6f} seconds to wake up tags {shown}.",
            proc="EngineCore",
            src="abstract.py:408",
        )
        return JSONResponse({"status": "sleeping" if engine.is_sleeping else "awake", "tags": tags})

    async def is_sleeping(_: Request) -> Response:
        return JSONResponse({"is_sleeping": engine.is_sleeping})

    async def collective_rpc(request: Request) -> Response:
        body = await json_body(request)
        method = body.get("method")
        if method != "reload_weights":
            return error(
                500,
                "Call to collective_rpc method failed: Worker failed with error "
                f"''CPUWorker' object has no attribute '{method}'', please check the stack "
                "trace above for the root cause",
                "InternalServerError",
            )
        vlog("Reloading and processing weights took 0.02 seconds", proc="Worker", src="inplace.py:113")
        return JSONResponse({"results": [None]})

    async def reset_prefix_cache(_: Request) -> Response:
        return JSONResponse({"success": True})

    async def load_lora(request: Request) -> Response:
        body = await json_body(request)
        for name in ("lora_name", "lora_path"):
            if name not in body:
                return missing_field(name)
        if not cfg.enable_lora:
            return error(
                500,
                "Call to add_lora method failed: Worker failed with error 'LoRA is not "
                "enabled. Use --enable-lora to enable LoRA.', please check the stack trace "
                "above for the root cause",
                "InternalServerError",
            )
        name, path = str(body["lora_name"]), str(body["lora_path"])
        why = engine.add_lora(name, path)
        if why is not None:
            status, type_ = (400, "InvalidUserInput") if "already" in why else (404, "NotFoundError")
            return error(status, why, type_)
        vlog(f"Loaded new LoRA adapter: name '{name}', path '{path}'", src="serving.py:226")
        # vLLM sends this as text with no content-type at all.
        return Response(f"Success: LoRA adapter '{name}' added successfully.", media_type=None)

    async def unload_lora(request: Request) -> Response:
        body = await json_body(request)
        if "lora_name" not in body:
            return missing_field("lora_name")
        name = str(body["lora_name"])
        if engine.loras.pop(name, None) is None:
            return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        vlog(f"Removed LoRA adapter: name '{name}'", src="serving.py:257")
        return Response(f"Success: LoRA adapter '{name}' removed successfully.", media_type=None)

    def unknown_model(model: str) -> JSONResponse:
        aliases = ", ".join(engine.model_names())
        return error(
            404, f"The model `{model}` does not exist. Valid aliases: {aliases}.", "NotFoundError", "model"
        )

    async def tokenize_route(request: Request) -> Response:
        body = await json_body(request)
        model = str(body.get("model") or cfg.served_name)
        if model not in engine.model_names():
            return unknown_model(model)
        text = chat_prompt(body["messages"]) if "messages" in body else str(body.get("prompt", ""))
        tokens = tokenize(text)
        return JSONResponse(
            {"count": len(tokens), "max_model_len": cfg.max_model_len, "tokens": tokens, "token_strs": None}
        )

    async def inference(request: Request, *, chat: bool) -> Response:
        body = await json_body(request)
        model = str(body.get("model") or cfg.served_name)
        if model not in engine.model_names():
            return unknown_model(model)
        if faults.fail_rate > 0 and rng.random() < faults.fail_rate:
            return error(500, "fake vLLM: injected failure (--fail-rate/--http-500)", "InternalServerError")
        prompt = chat_prompt(body.get("messages") or []) if chat else body.get("prompt")
        if not prompt:
            return bad_request(
                "Either prompt or prompt_embeds must be provided and non-empty. (parameter=prompt)", "prompt"
            )
        n_prompt = len(tokenize(prompt if isinstance(prompt, str) else json.dumps(prompt)))
        max_tokens = int(
            body.get("max_tokens") or body.get("max_completion_tokens") or cfg.default_max_tokens
        )
        too_long = check_length(n_prompt, max_tokens, cfg.max_model_len)
        if too_long is not None:
            return too_long
        await engine.wait_awake()  # held while asleep, like real vLLM
        req = Generation(engine, model, chat=chat, prompt_tokens=n_prompt, max_tokens=max_tokens)
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                req.stream(usage, crash=faults.crash_mid_stream, delay=faults.token_delay),
                media_type="text/event-stream",
            )
        return JSONResponse(await req.complete(delay=faults.token_delay))

    async def completions(request: Request) -> Response:
        return await inference(request, chat=False)

    async def chat_completions(request: Request) -> Response:
        return await inference(request, chat=True)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    routes = [
        Route("/health", health),
        Route("/ping", ping, methods=["GET", "POST"]),
        Route("/v1/models", guarded(models)),
        Route("/version", version),
        Route("/load", load),
        Route("/metrics", metrics),
        Route("/server_info", server_info),
        Route("/sleep", sleep, methods=["POST"]),
        Route("/wake_up", wake_up, methods=["POST"]),
        Route("/is_sleeping", is_sleeping),
        Route("/collective_rpc", guarded(collective_rpc), methods=["POST"]),
        Route("/reset_prefix_cache", reset_prefix_cache, methods=["POST"]),
        Route("/v1/load_lora_adapter", guarded(load_lora), methods=["POST"]),
        Route("/v1/unload_lora_adapter", guarded(unload_lora), methods=["POST"]),
        Route("/tokenize", guarded(tokenize_route), methods=["POST"]),
        Route("/v1/completions", guarded(completions), methods=["POST"]),
        Route("/v1/chat/completions", guarded(chat_completions), methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def check_length(n_prompt: int, max_tokens: int, max_model_len: int) -> JSONResponse | None:
    """vLLM's three context-length refusals, same wording."""
    if max_tokens > max_model_len:
        return bad_request(
            f"max_tokens={max_tokens} cannot be greater than max_model_len={max_model_len}. "
            f"Please request fewer output tokens. (parameter=max_tokens, value={max_tokens})",
            "max_tokens",
        )
    head = f"This model's maximum context length is {max_model_len} tokens. However, "
    if n_prompt > max_model_len:
        return bad_request(
            f"{head}your prompt contains at least {n_prompt} input tokens, which exceeds this "
            "limit even without any output tokens. Please reduce the length of the input "
            f"prompt. (parameter=input_tokens, value={n_prompt})",
            "input_tokens",
        )
    if n_prompt + max_tokens > max_model_len:
        return bad_request(
            f"{head}you requested {n_prompt + max_tokens} tokens ({n_prompt} in the input, "
            f"{max_tokens} in the output). Please reduce the length of the input or output.",
            "input_tokens",
        )
    return None


class Generation:
    """One request: produces the JSON or the SSE chunks, and keeps load and metrics honest."""

    def __init__(
        self, engine: FakeEngine, model: str, *, chat: bool, prompt_tokens: int, max_tokens: int
    ) -> None:
        self.engine, self.model, self.chat = engine, model, chat
        self.prompt_tokens, self.max_tokens = prompt_tokens, max_tokens
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:16]
        self.created = int(time.time())
        self.object = "chat.completion" if chat else "text_completion"

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + self.max_tokens,
            "completion_tokens": self.max_tokens,
        }

    async def complete(self, *, delay: float) -> dict[str, Any]:
        text = "".join([piece async for piece in self._pieces(delay)])
        choice: dict[str, Any] = {
            "index": 0,
            "logprobs": None,
            "finish_reason": "length",
            "stop_reason": None,
        }
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text, "reasoning": None}
        else:
            choice["text"] = text
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "system_fingerprint": FINGERPRINT,
            "usage": self.usage(),
        }

    async def stream(self, include_usage: bool, *, crash: bool, delay: float) -> AsyncIterator[bytes]:
        obj = "chat.completion.chunk" if self.chat else "text_completion"
        head = {"id": self.id, "object": obj, "created": self.created, "model": self.model}
        if self.chat:
            first = {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
            yield sse({**head, "choices": [first]})
        sent = 0
        async for piece in self._pieces(delay):
            if crash and sent == CRASH_AFTER_CHUNKS:
                die_mid_stream()
            sent += 1
            last = sent == self.max_tokens
            choice: dict[str, Any] = {
                "index": 0,
                "logprobs": None,
                "finish_reason": "length" if last else None,
            }
            choice.update({"delta": {"content": piece}} if self.chat else {"text": piece})
            if last:
                choice["stop_reason"] = None
            yield sse({**head, "choices": [choice], **({"system_fingerprint": FINGERPRINT} if last else {})})
        if crash:
            die_mid_stream()
        if include_usage:
            yield sse({**head, "choices": [], "usage": self.usage()})
        yield b"data: [DONE]\n\n"

    async def _pieces(self, delay: float) -> AsyncIterator[str]:
        engine, started = self.engine, time.perf_counter()
        first_at = started
        engine.begin(self.prompt_tokens + self.max_tokens)
        try:
            for i in range(self.max_tokens):
                if delay:
                    await asyncio.sleep(delay)
                if i == 0:
                    first_at = time.perf_counter()
                yield generated_piece(i)
        finally:
            engine.end(self.prompt_tokens + self.max_tokens)
        now = time.perf_counter()
        engine.metrics.observe_request(
            prompt=self.prompt_tokens,
            generated=self.max_tokens,
            max_tokens=self.max_tokens,
            reason="length",
            ttft=first_at - started,
            e2e=now - started,
        )


def sse(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n".encode()


def die_mid_stream() -> None:
    """--crash-mid-stream: a hard death (no cleanup, no shutdown log), as when the engine OOMs."""
    vlog("EngineCore encountered a fatal error.", proc="EngineCore", level="ERROR", src="core.py:1130")
    time.sleep(0.05)  # let the chunks already written leave the socket buffer
    os.kill(os.getpid(), signal.SIGKILL)
