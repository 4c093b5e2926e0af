"""``Discovery``: the daemon's long-lived discovery service (what the control-API routes call).

Owns the in-memory view of the last scan, the SQLite index (one writer: the daemon's loop
thread), the vLLM registry answer and the hub cache. Contracts:

- Scans run in a worker thread, one at a time (a lock); the index is written afterwards on the
  caller's thread, in one transaction. A listing older than ``rescan_interval_s`` triggers an
  incremental rescan first (stat only when nothing changed: ~ms).
- The registry probe (seconds) runs at most once per vLLM version (SQLite) and once per daemon
  life (memory), as one background task that concurrent callers share; an assessment waits for
  it at most ``REGISTRY_WAIT_S`` and otherwise answers from the labelled bundled list.
- Hub calls never make a request fail: offline is a status string. After an offline answer the
  hub is not asked again for ``HUB_OFFLINE_BACKOFF_S``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio

from vllm_mcp.api.discovery import (
    Assessment,
    AssessRequest,
    DiscoveredModel,
    DiscoverySummary,
    EndpointQuery,
    EndpointScan,
    HubInfo,
    ModelDetail,
    ModelPage,
    ModelQuery,
    RefreshRequest,
    RefreshResult,
    ScanRootInfo,
)
from vllm_mcp.config import Settings
from vllm_mcp.core.gpu_catalog import Device, parse_inventory
from vllm_mcp.discovery import hub, store
from vllm_mcp.discovery.assess import assess, declared_gpus
from vllm_mcp.discovery.endpoints import TransportFactory, discover, targets_from_settings
from vllm_mcp.discovery.registry import Registry, bundled, load_registry
from vllm_mcp.discovery.scanner import IndexRow, ScanOutcome, ScanRoot, scan
from vllm_mcp.discovery.store import SqlDb
from vllm_mcp.errors import NotFound

#: () → (devices to assess against, why there are none). The daemon wires NVML + host memory.
DeviceSource = Callable[[], tuple[Sequence[Device], str | None]]
HUB_OFFLINE_BACKOFF_S = 300.0
#: An assessment waits this long for a first registry probe, then answers from the bundled list
#: (labelled) so that a tool call stays well inside an MCP client's ~60 s budget.
REGISTRY_WAIT_S = 30.0


def scan_roots(settings: Settings, env: Mapping[str, str]) -> list[ScanRoot]:
    """The HF hub cache, ``models.cache_dir`` (VLLM_MODEL_CACHE_DIR) and the extra roots, deduplicated."""
    disc = settings.discovery
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    if disc.hf_cache_dir is not None:
        hf = disc.hf_cache_dir
    elif env.get("HF_HUB_CACHE"):
        hf = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        hf = Path(env["HF_HOME"]) / "hub"
    else:
        hf = home / ".cache" / "huggingface" / "hub"
    roots = [ScanRoot(hf.expanduser(), "hf-cache")]
    if settings.models.cache_dir is not None:
        roots.append(ScanRoot(settings.models.cache_dir.expanduser(), "hf-cache"))
    roots += [ScanRoot(p.expanduser(), "local") for p in disc.extra_roots]
    seen: set[str] = set()
    unique = []
    for root in roots:
        key = os.path.realpath(root.path)
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def _no_devices() -> tuple[Sequence[Device], str | None]:
    return (), "no device source configured"


def _quant_matches(entry: DiscoveredModel, want: str) -> bool:
    quant = entry.meta.quantization if entry.meta else None
    if want.lower() == "none":
        return quant is None and entry.kind != "lora"
    return quant is not None and want.lower() in (quant.method.lower(), (quant.detail or "").lower())


def matches(entry: DiscoveredModel, q: ModelQuery) -> bool:
    """The listing filters (all given ones must hold)."""
    meta = entry.meta
    arch = " ".join(filter(None, (meta.architecture, meta.model_type))) if meta else ""
    weights = meta.weight_bytes if meta else None
    checks = (
        q.kind is None or entry.kind == q.kind,
        q.status is None or entry.status == q.status,
        not q.name or q.name.lower() in entry.id.lower() or q.name.lower() in entry.name.lower(),
        not q.architecture or q.architecture.lower() in arch.lower(),
        not q.quantization or _quant_matches(entry, q.quantization),
        q.max_weight_bytes is None or (weights is not None and weights <= q.max_weight_bytes),
    )
    return all(checks)


class Discovery:
    def __init__(
        self,
        settings: Settings,
        db: SqlDb,
        *,
        env: Mapping[str, str] | None = None,
        devices: DeviceSource = _no_devices,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.env = dict(os.environ if env is None else env)
        self._devices = devices
        self._transport_factory = transport_factory
        self._scan_lock = anyio.Lock()
        self._registry_task: asyncio.Future[Registry] | None = None
        self._rows: dict[str, IndexRow] | None = None
        self._entries: list[DiscoveredModel] = []
        self._roots: list[ScanRootInfo] = []
        self._scanned_at = 0.0
        self._registry: Registry | None = None
        self._hub: dict[str, HubInfo] | None = None
        self._hub_offline_until = 0.0
        self._endpoints: EndpointScan | None = None

    # -- scanning ----------------------------------------------------------------------------

    @property
    def roots(self) -> list[ScanRoot]:
        return scan_roots(self.settings, self.env)

    async def rescan(self, *, full: bool = False) -> ScanOutcome:
        """Scan now (incremental unless ``full``) and persist what changed."""
        async with self._scan_lock:
            if full:
                store.clear_index(self.db)
                self._rows = {}
            elif self._rows is None:
                self._rows = store.load_index(self.db)
            previous = dict(self._rows)
            outcome = await anyio.to_thread.run_sync(
                lambda: scan(self.roots, previous, depth=self.settings.discovery.scan_depth)
            )
            if outcome.changed or outcome.removed:
                store.save_index(self.db, outcome.changed, outcome.removed)
            self._rows = outcome.rows
            self._entries = sorted(outcome.entries(), key=lambda e: e.id)
            self._roots = outcome.roots
            self._scanned_at = time.time()
            return outcome

    async def _fresh(self) -> None:
        if time.time() - self._scanned_at > self.settings.discovery.rescan_interval_s or not self._scanned_at:
            await self.rescan()

    def _hub_cache(self) -> dict[str, HubInfo]:
        if self._hub is None:
            self._hub = store.load_hub(self.db, self.settings.discovery.hub_cache_hours * 3600)
        return self._hub

    def _decorate(self, entry: DiscoveredModel) -> DiscoveredModel:
        """Attach what is not in the files: cached hub info, the id of a LoRA's base on disk."""
        update: dict[str, object] = {}
        if entry.repo_id and entry.repo_id in self._hub_cache():
            update["hub"] = self._hub_cache()[entry.repo_id]
        if entry.lora is not None and entry.lora.base_model:
            base = self._find_base(entry.lora.base_model)
            if base is not None:
                update["lora"] = entry.lora.model_copy(update={"base_id": base})
        return entry.model_copy(update=update) if update else entry

    def _find_base(self, ref: str) -> str | None:
        real = os.path.realpath(ref) if ref.startswith(("/", "~", ".")) else None
        for e in self._entries:
            if e.kind == "model" and (e.id == ref or (real is not None and os.path.realpath(e.path) == real)):
                return e.id
        return None

    # -- queries -----------------------------------------------------------------------------

    async def list_models(self, query: ModelQuery) -> ModelPage:
        await self._fresh()
        hits = [e for e in self._entries if matches(e, query)]
        page = hits[query.offset : query.offset + query.limit]
        end = query.offset + len(page)
        return ModelPage(
            models=[self._decorate(e) for e in page],
            total=len(hits),
            offset=query.offset,
            limit=query.limit,
            next_offset=end if end < len(hits) else None,
            scanned_at=self._scanned_at,
            roots=self._roots,
        )

    async def find(self, model_id: str) -> DiscoveredModel:
        await self._fresh()
        entry = next((e for e in self._entries if e.id == model_id), None)
        if entry is None:
            close = [e.id for e in self._entries if model_id.lower() in e.id.lower()][:5]
            raise NotFound(
                f"no discovered model has the id {model_id!r}",
                hint=(f"Did you mean: {', '.join(close)}? " if close else "")
                + "List ids with discover-models (or `vllm-mcp discover`); after adding files call "
                "refresh-metadata.",
                model=model_id,
            )
        return self._decorate(entry)

    async def model_detail(self, model_id: str) -> ModelDetail:
        entry = await self.find(model_id)
        status = "disabled"
        if self.settings.discovery.hub_enrichment and entry.repo_id:
            if entry.hub is not None:
                status = "cached"
            else:
                status = await self._enrich([entry.repo_id])
                entry = self._decorate(entry)
        return ModelDetail(model=entry, hub_status=status)

    async def _enrich(self, repo_ids: list[str]) -> str:
        if time.monotonic() < self._hub_offline_until:
            return hub.OFFLINE
        disc = self.settings.discovery
        round_ = await hub.enrich(
            repo_ids,
            endpoint=hub.hub_endpoint(disc.hub_endpoint, self.env),
            timeout=disc.hub_timeout_s,
            env=self.env,
        )
        if round_.infos:
            store.save_hub(self.db, round_.infos)
            self._hub_cache().update(round_.infos)
        if round_.offline:
            self._hub_offline_until = time.monotonic() + HUB_OFFLINE_BACKOFF_S
        return round_.status

    async def refresh(self, request: RefreshRequest) -> RefreshResult:
        outcome = await self.rescan(full=request.full)
        hub_status = "disabled"
        if request.hub and self.settings.discovery.hub_enrichment:
            self._hub_offline_until = 0.0  # an explicit refresh always tries
            repos = sorted({e.repo_id for e in self._entries if e.repo_id})
            hub_status = await self._enrich(repos)
        registry = (await self.registry(refresh=True)).source if request.registry else None
        counts = Counter(e.status for e in self._entries)
        return RefreshResult(
            models=len(self._entries),
            read=len(outcome.changed),
            reused=outcome.reused,
            removed=len(outcome.removed),
            broken=counts["broken"],
            incomplete=counts["incomplete"],
            duration_ms=outcome.duration_s * 1000,
            hub=hub_status,
            registry=registry,
        )

    async def registry(self, *, refresh: bool = False, wait_s: float | None = None) -> Registry:
        """The installed vLLM's registry. One probe at a time runs in the background; a caller
        that cannot wait longer than ``wait_s`` gets the bundled list, labelled, meanwhile."""
        if self._registry is not None and not refresh:
            return self._registry
        task = self._registry_task
        if task is None or task.done() or refresh:
            task = self._registry_task = asyncio.ensure_future(self._load_registry(refresh))
        try:
            return await asyncio.wait_for(asyncio.shield(task), wait_s)
        except TimeoutError:
            return bundled("the installed vLLM is still being asked (first time: ~10 s); retry shortly")

    async def _load_registry(self, refresh: bool) -> Registry:
        registry = await load_registry(
            self.settings.engine.vllm_bin,
            self.db,
            timeout=self.settings.discovery.registry_timeout_s,
            refresh=refresh,
        )
        self._registry = registry
        return registry

    async def assess(self, request: AssessRequest) -> Assessment:
        entry = await self.find(request.model)
        note: str | None = None
        if request.gpu_memory_gib:
            devices: Sequence[Device] = declared_gpus(request.gpu_memory_gib)
        elif request.gpus:
            devices = parse_inventory(request.gpus)
        else:
            devices, note = self._devices()
        util = request.gpu_memory_utilization or self.settings.engine_defaults.gpu_memory_utilization
        registry = await self.registry(wait_s=REGISTRY_WAIT_S)
        return assess(entry, registry, devices, utilization=util, device_note=note)

    async def endpoints(self, query: EndpointQuery) -> EndpointScan:
        s = self.settings
        key = s.external.api_key.get_secret_value() if s.external.api_key else None
        result = await discover(
            targets_from_settings(s, query.targets),
            timeout=query.timeout_s or s.discovery.probe_timeout_s,
            concurrency=s.discovery.probe_concurrency,
            api_key=key,
            transport_factory=self._transport_factory,
        )
        self._endpoints = result
        return result

    async def summary(self) -> DiscoverySummary:
        await self._fresh()
        return DiscoverySummary(
            scanned_at=self._scanned_at,
            roots=self._roots,
            by_kind=dict(Counter(e.kind for e in self._entries)),
            by_status=dict(Counter(e.status for e in self._entries)),
            registry=self._registry.source if self._registry else None,
            endpoints=self._endpoints,
        )
