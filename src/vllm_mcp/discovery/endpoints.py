"""Find running vLLM servers: probe configured addresses and port ranges concurrently.

Targets, in order (the first source to name an address labels it): ``VLLM_API_ENDPOINT``
(``external.endpoint``), ``VLLM_HOST``/``VLLM_PORT``, ``discovery.probe_targets``, the engine
port range, and per-call extras. Each probe is a few short GETs through ``VllmClient``:

1. ``/version`` — a refused or silent port ends the probe: "unreachable", reported only for
   the explicitly configured endpoints (a closed port in a range is just not a server);
2. ``/v1/models``, ``/metrics`` and ``/is_sleeping`` together.

A server is vLLM when its ``/metrics`` carries the ``vllm:`` prefix, or when ``/version`` gives
a version and ``/v1/models`` lists cards with ``max_model_len`` (what vLLM puts there and other
OpenAI-compatible servers do not). Anything else that answered HTTP is "not-vllm" — a finding,
never an error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import httpx

from vllm_mcp.api.discovery import EndpointReport, EndpointScan, ServedModel
from vllm_mcp.config import Settings
from vllm_mcp.config.settings import PROBE_TARGET_RE
from vllm_mcp.engine.client import ModelCard, VllmClient
from vllm_mcp.errors import InvalidRequest, UpstreamError, UpstreamHTTPError, UpstreamUnavailable

NOT_VLLM = "answers HTTP, but without vLLM's /version, /v1/models and vllm: metrics"
TransportFactory = Callable[[], httpx.AsyncBaseTransport | None]
_SLEEP_STATE = re.compile(r'^vllm:engine_sleep_state\{[^}]*sleep_state="(\w+)"[^}]*\}\s+([0-9.eE+-]+)', re.M)


@dataclass(frozen=True)
class ProbeTarget:
    base_url: str
    source: str
    explicit: bool  # configured by name: report it even when nothing answers


def _expand(spec: str, source: str, *, explicit: bool = False) -> list[ProbeTarget]:
    m = PROBE_TARGET_RE.match(spec.strip())
    if m is None:
        raise InvalidRequest(
            f"probe target {spec!r} is not host:port or host:first-last",
            hint="Write e.g. 127.0.0.1:8000 or 127.0.0.1:8000-8010.",
            field="targets",
        )
    lo, hi = int(m["lo"]), int(m["hi"] or m["lo"])
    if not 1 <= lo <= hi <= 65535 or hi - lo >= 4096:
        raise InvalidRequest(
            f"probe target {spec!r}: ports must be 1-65535, first ≤ last, ≤ 4096 ports", field="targets"
        )
    single = explicit and lo == hi
    return [ProbeTarget(f"http://{m['host']}:{port}", source, single) for port in range(lo, hi + 1)]


def targets_from_settings(settings: Settings, extra: list[str]) -> list[ProbeTarget]:
    """Every address to probe, deduplicated (the first source wins)."""
    ext, disc, eng = settings.external, settings.discovery, settings.engine
    found: list[ProbeTarget] = []
    if ext.endpoint is not None:
        url = str(ext.endpoint).rstrip("/").removesuffix("/v1")
        found.append(ProbeTarget(url, "VLLM_API_ENDPOINT", explicit=True))
    if ext.host or ext.port:
        found.append(
            ProbeTarget(f"http://{ext.host or '127.0.0.1'}:{ext.port or 8000}", "VLLM_HOST/VLLM_PORT", True)
        )
    for spec in disc.probe_targets:
        found += _expand(spec, f"discovery.probe_targets {spec}")
    if disc.probe_engine_range:
        spec = f"{eng.host}:{eng.port_range_start}-{eng.port_range_end}"
        found += _expand(spec, "engine port range")
    for spec in extra:
        found += _expand(spec, f"requested {spec}", explicit=True)
    seen: dict[str, ProbeTarget] = {}
    for target in found:
        seen.setdefault(target.base_url, target)
    return list(seen.values())


def _served(card: ModelCard) -> ServedModel:
    return ServedModel(id=card.id, root=card.root, parent=card.parent, max_model_len=card.max_model_len)


def _sleep_from_metrics(text: str) -> bool | None:
    states = {m[1]: float(m[2]) for m in _SLEEP_STATE.finditer(text)}
    if not states:
        return None
    return any(v >= 1 for k, v in states.items() if k != "awake")


async def _optional(call: Callable[[], object]) -> object:
    try:
        return await call()  # type: ignore[misc]
    except UpstreamError as exc:
        return exc


async def probe(
    target: ProbeTarget,
    *,
    timeout: float,
    api_key: str | None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> EndpointReport | None:
    """What answers at one address; ``None`` for a closed port that was not named explicitly."""
    async with VllmClient(target.base_url, api_key=api_key, transport=transport, timeout=timeout) as client:
        version: str | None = None
        try:
            version = await client.version()
        except UpstreamHTTPError:
            pass  # it speaks HTTP: carry on and find out what it is
        except UpstreamUnavailable as exc:
            if not target.explicit:
                return None
            return EndpointReport(
                url=target.base_url, source=target.source, status="unreachable", detail=exc.message
            )
        except UpstreamError:
            pass  # answered, but /version is not vLLM's JSON: keep probing
        results: dict[str, object] = {}

        async def grab(key: str, call: Callable[[], object]) -> None:
            results[key] = await _optional(call)

        async with anyio.create_task_group() as tg:
            tg.start_soon(grab, "models", client.models)
            tg.start_soon(grab, "metrics", client.metrics_text)
            tg.start_soon(grab, "sleeping", client.is_sleeping)
    return _report(target, version, results)


def _report(target: ProbeTarget, version: str | None, results: dict[str, object]) -> EndpointReport:
    cards = results["models"] if isinstance(results["models"], list) else None
    metrics = results["metrics"] if isinstance(results["metrics"], str) else ""
    evidence = []
    if version:
        evidence.append(f"/version {version}")
    if "vllm:" in metrics:
        evidence.append("vllm: metrics")
    if cards is not None and any(c.max_model_len is not None for c in cards):
        evidence.append("/v1/models with max_model_len")
    is_vllm = "vllm: metrics" in evidence or (version is not None and len(evidence) >= 2)
    if not is_vllm:
        return EndpointReport(url=target.base_url, source=target.source, status="not-vllm", detail=NOT_VLLM)
    sleeping = results["sleeping"] if isinstance(results["sleeping"], bool) else _sleep_from_metrics(metrics)
    cards = cards or []
    bases = [_served(c) for c in cards if c.parent is None]
    return EndpointReport(
        url=target.base_url,
        source=target.source,
        status="vllm",
        version=version,
        models=bases,
        loras=[_served(c) for c in cards if c.parent is not None],
        max_model_len=max((m.max_model_len for m in bases if m.max_model_len), default=None),
        sleeping=sleeping,
        evidence=evidence,
        detail="" if cards or not isinstance(results["models"], UpstreamError) else results["models"].message,
    )


class _Borrowed(httpx.AsyncBaseTransport):
    """One probe's view of the round's shared transport: closing it leaves the pool open.

    Building a client with its own transport costs ~27 ms here (an SSL context each), which
    made a 111-port round take 5 s; one shared pool for the round costs that once."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass  # the round closes the shared transport once, at its end


async def discover(
    targets: list[ProbeTarget],
    *,
    timeout: float,
    concurrency: int,
    api_key: str | None = None,
    transport_factory: TransportFactory | None = None,
) -> EndpointScan:
    """Probe every target concurrently (at most ``concurrency`` in flight)."""
    started = time.perf_counter()
    limiter = anyio.Semaphore(concurrency)
    reports: list[EndpointReport] = []
    shared = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=concurrency * 4, keepalive_expiry=1.0)
    )

    async def one(target: ProbeTarget) -> None:
        async with limiter:
            transport = transport_factory() if transport_factory else None
            with anyio.move_on_after(timeout * 4 + 1):  # a server that trickles bytes cannot hold us
                report = await probe(
                    target, timeout=timeout, api_key=api_key, transport=transport or _Borrowed(shared)
                )
                if report is not None:
                    reports.append(report)

    try:
        async with anyio.create_task_group() as tg:
            for target in targets:
                tg.start_soon(one, target)
    finally:
        await shared.aclose()
    order = {t.base_url: i for i, t in enumerate(targets)}
    reports.sort(key=lambda r: order.get(r.url, 0))
    return EndpointScan(
        endpoints=reports,
        probed=len(targets),
        duration_ms=(time.perf_counter() - started) * 1000,
        scanned_at=time.time(),
    )
