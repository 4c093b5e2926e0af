"""``VllmClient``: the one way the project talks HTTP to a vLLM server (0.32 API surface).

Contracts:

* Errors are translated here, at the vLLM boundary, and nowhere else: an error status becomes
  ``UpstreamHTTPError(status=…)`` carrying vLLM's own message, the operation, the URL and a hint
  for that status; a transport failure (refused, reset, timed out) becomes
  ``UpstreamUnavailable``. Both are raised ``from`` the httpx exception. ``health()`` is the one
  call that never raises for a down server: it answers ``False``.
* vLLM (uvicorn) closes idle keep-alive connections after ~5 s. A pooled connection kept longer
  is reused after the server dropped it and the request dies with "server disconnected"
  (FACTS.md: LiteLLM's 15 s pool turns this into HTTP 500s). So the default transport expires
  idle connections after ``KEEPALIVE_EXPIRY_S`` (well under 5 s), and a request that fails the
  way a dead reused connection fails is retried ONCE on a fresh connection.
* With an injected ``transport`` the caller owns pooling (tests pass ``httpx.MockTransport``).
* Every call takes an optional ``timeout`` (seconds) overriding the client default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from vllm_mcp.errors import InvalidRequest, UpstreamError, UpstreamHTTPError, UpstreamUnavailable

__all__ = ["KEEPALIVE_EXPIRY_S", "ModelCard", "VllmClient", "vllm_error_message"]

KEEPALIVE_EXPIRY_S = 2.0  # vLLM drops idle keep-alives after ~5 s: stay well under
SERVER_INFO_TIMEOUT_S = 30.0  # /server_info renders the whole config: 1.4-5 s on a busy box
SLEEP_LEVELS = (0, 1, 2)

# Failures that mean "the connection died under us" (server closed a pooled keep-alive while we
# were sending): safe to retry once on a new connection. Connect errors and timeouts are not
# retried: a refused connect is a down server, and a timed-out request may still be running.
_DEAD_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
_BODY_PREVIEW = 500


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One entry of ``/v1/models``: a base model (``parent is None``) or a LoRA adapter."""

    id: str
    root: str | None
    parent: str | None
    max_model_len: int | None


class VllmClient:
    """Async client for one vLLM server. Use as ``async with VllmClient(url) as vllm: …``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        keepalive_expiry: float = KEEPALIVE_EXPIRY_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        if transport is None:
            limits = httpx.Limits(keepalive_expiry=keepalive_expiry)
            transport = httpx.AsyncHTTPTransport(limits=limits)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, headers=headers, timeout=timeout
        )

    async def __aenter__(self) -> VllmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- liveness and identity ---------------------------------------------------------------

    async def health(self, *, timeout: float | None = None) -> bool:
        """True iff ``/health`` answers 200. Never raises for a down or unhealthy server."""
        try:
            resp = await self._send("GET", "/health", op="health", timeout=timeout)
        except UpstreamError:
            return False
        return resp.status_code == 200

    async def models(self, *, timeout: float | None = None) -> list[ModelCard]:
        """The served models: the base model(s) and every loaded LoRA adapter."""
        body = await self._json("GET", "/v1/models", op="models", timeout=timeout)
        try:
            return [_model_card(entry) for entry in body["data"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unexpected("models", "/v1/models", body) from exc

    async def version(self, *, timeout: float | None = None) -> str:
        body = await self._json("GET", "/version", op="version", timeout=timeout)
        return str(self._field(body, "version", op="version", path="/version"))

    async def metrics_text(self, *, timeout: float | None = None) -> str:
        """The raw Prometheus text of ``/metrics`` (parsing lives in ``engine.metrics``)."""
        resp = await self._checked("GET", "/metrics", op="metrics", timeout=timeout)
        return resp.text

    async def server_info(self, *, timeout: float | None = None) -> dict[str, Any]:
        """``/server_info`` (dev mode): vllm_config, vllm_env, system_env. Slow: seconds."""
        body = await self._json(
            "GET", "/server_info", op="server_info", timeout=timeout or SERVER_INFO_TIMEOUT_S
        )
        if not isinstance(body, dict):
            raise self._unexpected("server_info", "/server_info", body)
        return body

    async def load(self, *, timeout: float | None = None) -> int:
        """``/load``: the number of requests the server is working on right now."""
        body = await self._json("GET", "/load", op="load", timeout=timeout)
        return int(self._field(body, "server_load", op="load", path="/load"))

    # -- sleep mode (needs VLLM_SERVER_DEV_MODE=1) ------------------------------------------

    async def sleep(self, level: int = 1, *, timeout: float | None = None) -> None:
        """Put the engine to sleep. Level 1 offloads weights, 2 discards them, 0 only pauses.

        Idempotent on the server: sleeping again at the same level answers 200.
        """
        if level not in SLEEP_LEVELS:
            raise InvalidRequest(
                f"sleep level must be one of {SLEEP_LEVELS}, got {level!r}",
                hint="Use 1 to offload weights (fast wake) or 2 to discard them (frees most).",
                level=level,
            )
        await self._checked("POST", "/sleep", op="sleep", params={"level": level}, timeout=timeout)

    async def wake_up(self, tags: Sequence[str] | None = None, *, timeout: float | None = None) -> None:
        """Wake everything, or only ``tags`` (``weights``, ``kv_cache``) for the level-2 dance."""
        params = {"tags": list(tags)} if tags else None
        await self._checked("POST", "/wake_up", op="wake_up", params=params, timeout=timeout)

    async def is_sleeping(self, *, timeout: float | None = None) -> bool:
        body = await self._json("GET", "/is_sleeping", op="is_sleeping", timeout=timeout)
        return bool(self._field(body, "is_sleeping", op="is_sleeping", path="/is_sleeping"))

    async def collective_rpc(
        self,
        method: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Call ``method`` on every worker; returns vLLM's per-worker ``results`` list."""
        payload: dict[str, Any] = {"method": method, "args": list(args), "kwargs": dict(kwargs or {})}
        body = await self._json("POST", "/collective_rpc", op="collective_rpc", json=payload, timeout=timeout)
        return body.get("results") if isinstance(body, dict) else body

    async def reset_prefix_cache(self, *, timeout: float | None = None) -> None:
        await self._checked("POST", "/reset_prefix_cache", op="reset_prefix_cache", timeout=timeout)

    # -- LoRA (needs --enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) ---------------

    async def load_lora(self, name: str, path: str, *, timeout: float | None = None) -> str:
        """Load adapter ``name`` from ``path``; returns vLLM's plain-text "Success: …" line."""
        payload = {"lora_name": name, "lora_path": path}
        resp = await self._checked(
            "POST", "/v1/load_lora_adapter", op="load_lora", json=payload, timeout=timeout
        )
        return resp.text

    async def unload_lora(self, name: str, *, timeout: float | None = None) -> str:
        """Unload adapter ``name``; returns vLLM's plain-text "Success: …" line."""
        resp = await self._checked(
            "POST", "/v1/unload_lora_adapter", op="unload_lora", json={"lora_name": name}, timeout=timeout
        )
        return resp.text

    # -- inference helpers (tests, warm-up) -------------------------------------------------

    async def tokenize(self, model: str, prompt: str, *, timeout: float | None = None) -> list[int]:
        body = await self._json(
            "POST", "/tokenize", op="tokenize", json={"model": model, "prompt": prompt}, timeout=timeout
        )
        tokens = self._field(body, "tokens", op="tokenize", path="/tokenize")
        return [int(t) for t in tokens]

    async def completion(
        self, model: str, prompt: str, max_tokens: int = 8, *, timeout: float | None = None, **kw: Any
    ) -> dict[str, Any]:
        """A non-streaming ``/v1/completions`` call; extra keywords go into the request body."""
        payload = {"model": model, "prompt": prompt, "max_tokens": max_tokens, **kw}
        body = await self._json("POST", "/v1/completions", op="completion", json=payload, timeout=timeout)
        if not isinstance(body, dict):
            raise self._unexpected("completion", "/v1/completions", body)
        return body

    # -- plumbing -----------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        op: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request, retried once if the connection died under it; transport → Upstream*."""
        url = self.base_url + path
        request_timeout = timeout if timeout is not None else self.timeout
        for attempt in (1, 2):
            try:
                return await self._http.request(
                    method, path, json=json, params=params, timeout=request_timeout
                )
            except _DEAD_CONNECTION as exc:
                if attempt == 1:
                    continue  # most likely a pooled keep-alive the server had dropped
                raise self._unavailable(op, url, exc, "the connection was closed twice in a row") from exc
            except httpx.TimeoutException as exc:
                raise self._unavailable(op, url, exc, f"no answer within {request_timeout:g} s") from exc
            except httpx.TransportError as exc:
                raise self._unavailable(op, url, exc, _describe_transport(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    async def _checked(self, method: str, path: str, *, op: str, **kw: Any) -> httpx.Response:
        """``_send`` plus status translation: any non-2xx becomes ``UpstreamHTTPError``."""
        resp = await self._send(method, path, op=op, **kw)
        if resp.is_success:
            return resp
        raise _http_error(resp, op=op, url=self.base_url + path)

    async def _json(self, method: str, path: str, *, op: str, **kw: Any) -> Any:
        resp = await self._checked(method, path, op=op, **kw)
        try:
            return resp.json()
        except ValueError as exc:
            raise self._unexpected(op, path, resp.text) from exc

    def _field(self, body: Any, key: str, *, op: str, path: str) -> Any:
        if not isinstance(body, dict) or key not in body:
            raise self._unexpected(op, path, body)
        return body[key]

    def _unavailable(self, op: str, url: str, exc: Exception, why: str) -> UpstreamUnavailable:
        return UpstreamUnavailable(
            f"vLLM at {self.base_url} did not answer {op} ({why})",
            url=url,
            operation=op,
            error=type(exc).__name__,
        )

    def _unexpected(self, op: str, path: str, body: Any) -> UpstreamError:
        preview = body if isinstance(body, str) else json.dumps(body, default=str)
        return UpstreamError(
            f"vLLM at {self.base_url} gave an unexpected answer to {op}: {preview[:_BODY_PREVIEW]!r}",
            hint="Check that this address is a vLLM server of a supported version (0.32).",
            url=self.base_url + path,
            operation=op,
        )


def _model_card(entry: Mapping[str, Any]) -> ModelCard:
    max_len = entry.get("max_model_len")
    return ModelCard(
        id=str(entry["id"]),
        root=entry.get("root"),
        parent=entry.get("parent"),
        max_model_len=int(max_len) if max_len is not None else None,
    )


def _describe_transport(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc or 'refused'}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- vLLM error bodies → UpstreamHTTPError ----------------------------------------------------


def vllm_error_message(resp: httpx.Response) -> tuple[str, str | None]:
    """(message, vLLM error type) from any error body vLLM is known to send.

    Shapes: 0.32 ``{"error": {"message", "type", "param", "code"}}``; older
    ``{"object": "error", "message", "type", "code"}``; the API-key guard ``{"error": "…"}``;
    FastAPI's unknown route ``{"detail": "Not Found"}``; anything else is shown as text.
    """
    try:
        body = resp.json()
    except ValueError:
        return (resp.text.strip()[:_BODY_PREVIEW] or resp.reason_phrase), None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(err["message"]), _opt_str(err.get("type"))
        if isinstance(err, str):
            return err, None
        if body.get("object") == "error" and "message" in body:
            return str(body["message"]), _opt_str(body.get("type"))
        if "detail" in body:
            return str(body["detail"]), None
    return json.dumps(body)[:_BODY_PREVIEW], None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _http_error(resp: httpx.Response, *, op: str, url: str) -> UpstreamHTTPError:
    message, vllm_type = vllm_error_message(resp)
    status = resp.status_code
    return UpstreamHTTPError(
        f"vLLM {op} failed with HTTP {status}: {message}",
        status=status,
        hint=_hint(status, op, message),
        url=url,
        operation=op,
        vllm_message=message,
        vllm_type=vllm_type,
    )


_LORA_OPS = ("load_lora", "unload_lora")
_DEV_OPS = ("sleep", "wake_up", "is_sleeping", "collective_rpc", "reset_prefix_cache", "server_info")


def _hint(status: int, op: str, message: str) -> str:
    """What to do next, by status and operation (the cases observed on vLLM 0.32)."""
    text = message.lower()
    if status in (401, 403):
        return "vLLM wants its API key: pass the key the server was started with (--api-key)."
    if status == 404:
        return _hint_404(op, text)
    if status == 400:
        return _hint_400(text)
    if status >= 500:
        return _hint_5xx(status, op, text)
    return "vLLM refused the request: see its message above."


def _hint_400(text: str) -> str:
    if "already been loaded" in text:
        return "That adapter name is taken: unload it first, or load under another name."
    if "maximum context length" in text or "max_model_len" in text:
        return "Shorten the prompt or lower max_tokens to fit the model's max_model_len."
    return "Fix the request: vLLM's message above names the bad parameter."


def _hint_5xx(status: int, op: str, text: str) -> str:
    if op in _LORA_OPS and "lora is not enabled" in text:
        return "Start the engine with --enable-lora (and --max-lora-rank ≥ the adapter's rank)."
    if op == "collective_rpc" and status == 500:
        return "The worker method failed or does not exist: check the method name and the vLLM log."
    if status in (502, 503, 504):
        return "vLLM is starting, overloaded or shutting down: wait and retry, or check its log."
    return "vLLM failed internally: read the engine log for the stack trace."


def _hint_404(op: str, text: str) -> str:
    if text == "not found":  # FastAPI's unknown route: the endpoint is not enabled on this server
        if op in _LORA_OPS:
            return "Runtime LoRA endpoints need VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in vLLM's env."
        if op in _DEV_OPS:
            return "This endpoint needs VLLM_SERVER_DEV_MODE=1 in the engine's environment."
        return "This vLLM does not serve that endpoint: check the vLLM version (0.32 expected)."
    if op == "load_lora":
        return "No adapter at that path: point lora_path at a folder with adapter_config.json."
    if op == "unload_lora":
        return "No adapter by that name is loaded: list loaded adapters with models()."
    return "Unknown model: use a served name listed by /v1/models (base model or loaded adapter)."
