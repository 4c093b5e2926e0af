"""The placement planner: several models on a set of GPUs, each sized to share. Pure.

A vLLM engine started with ``gpu_memory_utilization`` fills that whole fraction of its GPUs
with KV cache, so engines that share a GPU must each be given ``kv_cache_memory_bytes``: exactly
the pool its target (``concurrency`` requests of ``max_model_len`` tokens) needs. A model's
demand per GPU is then weights + activation + graphs + overhead + that pool (``core.vram``).

Decision, in order:

1. Every request gets its options: the valid tensor-parallel sizes (or the one asked for),
   ascending; an option with a broken constraint is dropped.
2. Requests are placed largest total demand first (first-fit decreasing).
3. Each takes the smallest TP that fits, on the GPUs with the least room that still hold it
   (best fit: big holes stay free for big models); indices break ties.
4. A request that fits nowhere is reported with why, and the changes that would place it
   beside the others as planned, smallest first: a shorter context or fewer concurrent requests
   (ranked by the fraction cut), an FP8 KV cache, FP8 weights, more GPUs of the same kind, and
   last, leaving out one of the placed models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.gpu_catalog import Device, GiB
from vllm_mcp.core.kv_cache import pool_bytes_for_tokens
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.recommend import largest_fitting
from vllm_mcp.core.vram import MemoryEstimate, estimate_memory, kv_layout
from vllm_mcp.core.vram_rules import valid_tensor_parallel_sizes
from vllm_mcp.errors import InvalidRequest

__all__ = [
    "Assignment",
    "Fix",
    "PlacementPlan",
    "PlacementRequest",
    "Unplaced",
    "plan_placement",
    "sized_config",
]


@dataclass(frozen=True)
class PlacementRequest:
    name: str
    model: ModelDims
    max_model_len: int
    concurrency: int = 1
    tensor_parallel_size: int | None = None  # None: the planner picks
    kv_cache_dtype: str = "auto"
    quantization: str | None = None


@dataclass(frozen=True)
class Assignment:
    name: str
    model: str
    gpus: tuple[int, ...]
    config: EngineConfig  # with kv_cache_memory_bytes: ready to start beside the others
    bytes_per_gpu: int
    estimate: MemoryEstimate


@dataclass(frozen=True)
class Fix:
    """One change that would place an unplaced model (with the others as planned)."""

    kind: str  # "shrink" (context or concurrency), "precision", "add_gpus", "drop"
    description: str
    target: str  # the model the change is about (for add_gpus: the one it places)
    cost: float  # how big a change it is: the fraction cut, or a fixed rank for the others
    request: PlacementRequest | None = None  # the changed request, for shrink and precision
    add_gpus: int = 0  # more devices like the first, for add_gpus
    drop: str | None = None  # the placed model to leave out, for drop


@dataclass(frozen=True)
class Unplaced:
    name: str
    model: str
    reason: str
    fixes: tuple[Fix, ...]  # smallest change first


@dataclass(frozen=True)
class PlacementPlan:
    devices: tuple[Device, ...]
    assignments: tuple[Assignment, ...]
    unplaced: tuple[Unplaced, ...]
    free_after: tuple[int, ...]  # per device, bytes left (after the safety margin)
    changes: tuple[Fix, ...] = ()  # when something is unplaced: set-wide changes that fit it all

    @property
    def fits(self) -> bool:
        return not self.unplaced


def sized_config(request: PlacementRequest, tp: int, device: Device) -> EngineConfig:
    """The engine config that gives ``request`` exactly the KV pool its target needs."""
    base = EngineConfig(
        tensor_parallel_size=tp,
        max_model_len=request.max_model_len,
        kv_cache_dtype=request.kv_cache_dtype,
        quantization=request.quantization,
        kv_cache_memory_bytes=1,
    )
    probe = estimate_memory(request.model, base, device)
    layout = kv_layout(request.model, probe.config)
    tokens = request.concurrency * request.max_model_len
    pool = pool_bytes_for_tokens(layout, tokens, request.max_model_len, probe.config.in_flight_tokens)
    return base.with_(kv_cache_memory_bytes=max(pool, 1))


def _options(request: PlacementRequest, devices: Sequence[Device]) -> list[tuple[int, MemoryEstimate]]:
    """``(tp, estimate)`` for each legal TP size, ascending; estimates ignore free memory."""
    device = devices[0]
    roomy = replace(device, memory_free_bytes=None, memory_total_bytes=1 << 62)
    sizes = [request.tensor_parallel_size] if request.tensor_parallel_size else None
    if sizes is None:
        sizes = [1] if device.platform == "cpu" else valid_tensor_parallel_sizes(request.model, len(devices))
    out = []
    for tp in sizes:
        if tp > len(devices):
            continue
        est = estimate_memory(request.model, sized_config(request, tp, device), roomy)
        if not est.problems:
            out.append((tp, est))
    return out


def _pick(free: list[int], need: int, tp: int) -> tuple[int, ...] | None:
    """Best fit: the ``tp`` devices with the least room that still hold ``need`` each."""
    fitting = sorted((room, i) for i, room in enumerate(free) if room >= need)
    if len(fitting) < tp:
        return None
    return tuple(sorted(i for _, i in fitting[:tp]))


def _place(
    requests: Sequence[PlacementRequest], devices: Sequence[Device], free: list[int]
) -> tuple[list[Assignment], list[PlacementRequest]]:
    options = {r.name: _options(r, devices) for r in requests}

    def demand(r: PlacementRequest) -> int:
        opts = options[r.name]
        return min((tp * est.total_bytes for tp, est in opts), default=1 << 62)

    placed: list[Assignment] = []
    left: list[PlacementRequest] = []
    for request in sorted(requests, key=demand, reverse=True):
        for tp, est in options[request.name]:
            gpus = _pick(free, est.total_bytes, tp)
            if gpus is None:
                continue
            for g in gpus:
                free[g] -= est.total_bytes
            config = est.config.to_engine_config()
            placed.append(Assignment(request.name, request.model.name, gpus, config, est.total_bytes, est))
            break
        else:
            left.append(request)
    return placed, left


def plan_placement(
    requests: Sequence[PlacementRequest], devices: Sequence[Device], *, safety_margin_bytes: int = 0
) -> PlacementPlan:
    """An assignment of ``requests`` to ``devices`` (see the module docstring)."""
    if not devices:
        raise InvalidRequest(
            "no devices to place models on", hint="declare some, e.g. 2xH100-80GB", field="gpus"
        )
    names = [r.name for r in requests]
    if len(set(names)) != len(names):
        raise InvalidRequest("model names in a placement must be distinct", field="models")
    placed, left, free = _plan(requests, devices, safety_margin_bytes)
    unplaced = tuple(_explain(r, devices, free, safety_margin_bytes, placed) for r in left)
    changes = tuple(set_changes(requests, devices, safety_margin_bytes=safety_margin_bytes)) if left else ()
    order = {n: i for i, n in enumerate(names)}
    placed.sort(key=lambda a: order[a.name])
    return PlacementPlan(tuple(devices), tuple(placed), unplaced, tuple(free), changes)


def _plan(
    requests: Sequence[PlacementRequest], devices: Sequence[Device], safety: int
) -> tuple[list[Assignment], list[PlacementRequest], list[int]]:
    free = [max(d.available_bytes - safety, 0) for d in devices]
    placed, left = _place(requests, devices, free)
    return placed, left, free


def _all_fit(requests: Sequence[PlacementRequest], devices: Sequence[Device], safety: int) -> bool:
    return not _plan(requests, devices, safety)[1]


def _explain(
    request: PlacementRequest,
    devices: Sequence[Device],
    free: list[int],
    safety: int,
    placed: Sequence[Assignment],
) -> Unplaced:
    """Why ``request`` found no room in ``free``, and the smallest changes that would give it one."""
    opts = _options(request, devices)
    most = max(free, default=0)
    if not opts:
        est = estimate_memory(request.model, sized_config(request, 1, devices[0]), devices[0])
        first = est.problems[0] if est.problems else None
        reason = first.message if first else "no legal tensor-parallel size on these devices"
        hint = (Fix("config", first.hint, request.name, 1.0),) if first else ()
        return Unplaced(request.name, request.model.name, reason, hint)
    # Name the smallest split that an empty GPU could hold (else the widest split there is).
    total = devices[0].memory_total_bytes - safety
    tp, est = next(((t, e) for t, e in opts if e.total_bytes <= total), opts[-1])
    reason = (
        f"needs {est.total_bytes / GiB:.1f} GiB on each of {tp} GPU(s) "
        f"(weights {est.weights_bytes / GiB:.1f}, KV {est.kv.pool_bytes / GiB:.1f}); "
        f"the most free on one GPU is {most / GiB:.1f} GiB"
    )
    fixes = _fixes(request, devices, free, safety, placed)
    return Unplaced(request.name, request.model.name, reason, tuple(fixes))


def _fits_now(request: PlacementRequest, devices: Sequence[Device], free: list[int]) -> bool:
    _, left = _place([request], devices, list(free))
    return not left


def _fixes(
    request: PlacementRequest,
    devices: Sequence[Device],
    free: list[int],
    safety: int,
    placed: Sequence[Assignment],
) -> list[Fix]:
    """Changes to ``request`` alone that place it beside the others as they are planned."""

    def fits(changed: PlacementRequest) -> bool:
        return _fits_now(changed, devices, free)

    found = _request_changes(request, devices[0], fits)
    found += _more_gpus(
        devices, safety, lambda more, room: _fits_now(request, more, room), free, request.name
    )
    for other in placed:
        room = list(free)
        for g in other.gpus:
            room[g] += other.bytes_per_gpu
        if _fits_now(request, devices, room):
            where = ", ".join(str(g) for g in other.gpus)
            text = f"drop {other.name} (frees {other.bytes_per_gpu / GiB:.1f} GiB on GPU {where})"
            found.append(Fix("drop", text, other.name, 1.0, drop=other.name))
    found.sort(key=lambda f: f.cost)
    return found


def _more_gpus(
    devices: Sequence[Device],
    safety: int,
    fits: Callable[[list[Device], list[int]], bool],
    free: list[int],
    target: str,
) -> list[Fix]:
    """The fewest extra devices like the first one that make ``fits`` hold (none on a CPU host)."""
    device = devices[0]
    if device.platform == "cpu":
        return []
    for extra in range(1, 65):
        more = [*devices, *(device.with_index(len(devices) + i) for i in range(extra))]
        room = free + [max(device.memory_total_bytes - safety, 0)] * extra
        if fits(more, room):
            return [Fix("add_gpus", f"add {extra}× {device.name}", target, 0.5 + 0.1 * extra, add_gpus=extra)]
    return []


def _request_changes(
    request: PlacementRequest, device: Device, fits: Callable[[PlacementRequest], bool]
) -> list[Fix]:
    """Shrink or lower the precision of one request until ``fits`` holds (each kind once)."""
    found: list[Fix] = []
    name = request.name

    def shrink(changed: Callable[[int], PlacementRequest], low: int, high: int, label: str) -> None:
        best = largest_fitting(lambda x: fits(changed(x)), low, high)
        if best is not None:
            text = f"{name}: {label} {best:,}"
            found.append(Fix("shrink", text, name, 1 - best / (high + 1), changed(best)))

    top = request.max_model_len - 1
    shrink(lambda x: replace(request, max_model_len=x), 256, top, "lower max_model_len to")
    if request.concurrency > 1:
        top = request.concurrency - 1
        shrink(lambda x: replace(request, concurrency=x), 1, top, "lower the concurrent requests to")
    fp8_kv = replace(request, kv_cache_dtype="fp8")
    if device.fp8_supported and request.kv_cache_dtype == "auto" and fits(fp8_kv):
        text = f"{name}: use kv_cache_dtype fp8 (half the KV bytes)"
        found.append(Fix("precision", text, name, 0.3, fp8_kv))
    fp8_w = replace(request, quantization="fp8")
    unquantized = not request.model.quantization and request.quantization is None
    if device.fp8_supported and unquantized and fits(fp8_w):
        text = f"{name}: use quantization fp8 (about half the weight bytes)"
        found.append(Fix("precision", text, name, 0.4, fp8_w))
    return found


def set_changes(
    requests: Sequence[PlacementRequest], devices: Sequence[Device], *, safety_margin_bytes: int = 0
) -> list[Fix]:
    """The smallest changes to *any one* model (or to the GPUs) that make the whole set fit.

    Each candidate is checked by planning the whole set again, so applying any one of them gives
    a plan that fits. Smallest first: the fraction of context or concurrency cut, then FP8, then
    more GPUs, then leaving a model out.
    """
    safety = safety_margin_bytes

    def whole_fits(changed: PlacementRequest) -> bool:
        return _all_fit([changed if r.name == changed.name else r for r in requests], devices, safety)

    found: list[Fix] = []
    for request in requests:
        found += _request_changes(request, devices[0], whole_fits)
    found += _more_gpus(
        devices,
        safety,
        lambda more, _: plan_placement(requests, more, safety_margin_bytes=safety).fits,
        [],
        "",
    )
    for request in requests:
        rest = [r for r in requests if r is not request]
        if plan_placement(rest, devices, safety_margin_bytes=safety).fits:
            found.append(Fix("drop", f"leave out {request.name}", request.name, 1.0, drop=request.name))
    found.sort(key=lambda f: f.cost)
    return found
