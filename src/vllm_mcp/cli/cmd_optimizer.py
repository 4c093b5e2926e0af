"""`vllm-mcp estimate|recommend|plan|gpus|calibration` — memory planning from a shell.

Each verb asks the daemon (``OptimizerApi``) and prints a table, or JSON with ``--json``.
``estimate``, ``recommend`` and ``plan`` exit 1 when the answer is "does not fit", so scripts can
branch on it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

from vllm_mcp.api.optimizer import (
    DeviceView,
    EstimateRequest,
    MemoryEstimateView,
    PlacementModel,
    PlanRequest,
    RecommendRequest,
)
from vllm_mcp.cli.common import add_json_flag, emit_json, out, run_async, settings_from, table
from vllm_mcp.client import DaemonClient
from vllm_mcp.client.optimizer_api import OptimizerApi
from vllm_mcp.errors import InvalidRequest

GIB = 1 << 30


def gib(n: int | None) -> str:
    return "—" if n is None else f"{n / GIB:,.2f} GiB"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_estimate(sub)
    p = sub.add_parser("recommend", help="engine flags for a model, a context and a concurrency")
    p.add_argument("model", help="local folder, cached HF id, or reference model name")
    p.add_argument("--context", type=int, help="tokens per request (default: min(model, 8192))")
    p.add_argument("--concurrency", type=int, default=1, help="requests served at once (default 1)")
    p.add_argument("--prefer", choices=("latency", "throughput"), default="latency")
    p.add_argument("--gpus", help="plan for this hardware, e.g. 2xH100-80GB")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _recommend))

    p = sub.add_parser("plan", help="place several models on the GPUs (sharing by KV-cache bytes)")
    p.add_argument(
        "models",
        nargs="+",
        metavar="MODEL[,ctx=N][,conc=N][,tp=N][,name=X][,kv=fp8][,quant=fp8]",
        help="a model and its target, e.g. meta-llama/Llama-3.1-8B,ctx=32768,conc=4",
    )
    p.add_argument("--gpus", help="plan for this hardware, e.g. 2xH100-80GB")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _plan))

    p = sub.add_parser("gpus", help="the GPUs the optimizer plans for (NVML, declared, or host RAM)")
    p.add_argument("--gpus", help="show a declared inventory instead, e.g. 2xH100-80GB")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _gpus))

    p = sub.add_parser("calibration", help="what vLLM reported at past starts vs what was predicted")
    p.add_argument("model", nargs="?", help="only this model (as it was started)")
    p.add_argument("-n", "--limit", type=int, default=20)
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _calibration))


def _register_estimate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("estimate", help="per-GPU memory of one engine config, and whether it fits")
    p.add_argument("model", help="local folder, cached HF id, or reference model name")
    p.add_argument("--tp", "--tensor-parallel-size", dest="tensor_parallel_size", type=int, default=1)
    p.add_argument("--pp", "--pipeline-parallel-size", dest="pipeline_parallel_size", type=int, default=1)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--quantization")
    p.add_argument("--kv-cache-dtype", default="auto")
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--max-num-seqs", type=int)
    p.add_argument("--max-num-batched-tokens", type=int)
    p.add_argument("--block-size", type=int)
    p.add_argument("--gpu-memory-utilization", type=float)
    p.add_argument("--kv-cache-memory-bytes", type=int)
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--concurrency", type=int, default=1, help="requests of max-model-len the KV must hold")
    p.add_argument("--gpus", help="plan for this hardware, e.g. 2xH100-80GB")
    p.add_argument("--gpu-index", type=int, help="estimate for this device of the inventory")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _estimate))


def _with_api(
    args: argparse.Namespace, fn: Callable[[OptimizerApi, argparse.Namespace], Awaitable[int]]
) -> int:
    settings = settings_from(args).settings

    async def go() -> int:
        async with DaemonClient(settings, actor="cli") as daemon:
            return await fn(OptimizerApi(daemon), args)

    return run_async(go)


def _fields(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


async def _estimate(api: OptimizerApi, args: argparse.Namespace) -> int:
    names = tuple(EstimateRequest.model_fields)
    req = EstimateRequest.model_validate(_fields(args, names))
    est = await api.estimate(req)
    if args.json:
        emit_json(est.model_dump(mode="json"))
    else:
        print_estimate(est)
    return 0 if est.fits else 1


def print_estimate(est: MemoryEstimateView) -> None:
    cfg = est.config
    out.print(
        f"[bold]{est.model}[/] on {est.device} × {est.gpus} (TP={cfg['tensor_parallel_size']}, "
        f"PP={cfg['pipeline_parallel_size']}, {cfg['dtype']}, KV {cfg['kv_cache_dtype']}, "
        f"max_model_len {cfg['max_model_len']:,})"
    )
    rows = [
        ("weights", gib(est.weights_bytes)),
        ("activation peak", gib(est.activation_bytes)),
        ("CUDA graphs", gib(est.cuda_graph_bytes)),
        ("framework overhead", gib(est.overhead_bytes)),
        ("KV cache", gib(est.kv_cache_bytes)),
        ("total", gib(est.total_bytes)),
        ("limit (free − safety margin)", gib(est.limit_bytes)),
        (
            "KV bytes/token (this GPU · model at TP=1)",
            f"{est.kv_bytes_per_token:,} · {est.model_kv_bytes_per_token:,}",
        ),
        ("KV capacity", f"{est.kv_capacity_tokens:,} tokens ({est.max_concurrency:.2f}× max_model_len)"),
    ]
    out.print(table(None, ["per GPU", "value"], rows))
    verdict = "[green]fits[/]" if est.fits else "[red]does not fit[/]"
    out.print(f"{verdict}, margin {gib(est.margin_bytes)}")
    for p in est.problems:
        out.print(f"  [red]✗[/] {p.message}\n    → {p.hint}")
    for n in est.notes:
        out.print(f"  [dim]· {n}[/]")
    if est.calibration.samples:
        out.print(f"  [dim]· corrected from {est.calibration.samples} past start(s)[/]")


async def _recommend(api: OptimizerApi, args: argparse.Namespace) -> int:
    req = RecommendRequest(
        model=args.model,
        target_context=args.context,
        concurrency=args.concurrency,
        preference=args.prefer,
        gpus=args.gpus,
    )
    rec = await api.recommend(req)
    if args.json:
        emit_json(rec.model_dump(mode="json"))
        return 0 if rec.feasible else 1
    head = f"[bold]{rec.model}[/] for {rec.concurrency} × {rec.target_context:,} tokens, {rec.preference}"
    out.print(f"{head}, on {rec.devices_available}× {rec.device}")
    if not rec.feasible:
        out.print("[red]nothing fits[/]")
        for r in rec.reasons:
            out.print(f"  · {r}")
        return 1
    out.print(table(None, ["flag", "value", "why"], [(f.flag, f.value, f.reason) for f in rec.flags]))
    out.print(f"vllm serve {rec.model} {' '.join(rec.argv)}", markup=False)
    if rec.alternative is not None:
        out.print(f"[dim]next best: {rec.alternative_why}[/]")
    for r in rec.reasons:
        out.print(f"  · {r}")
    return 0


_PLAN_KEYS = {
    "ctx": "max_model_len",
    "conc": "concurrency",
    "tp": "tensor_parallel_size",
    "name": "name",
    "kv": "kv_cache_dtype",
    "quant": "quantization",
}


def parse_plan_model(text: str) -> PlacementModel:
    """``MODEL[,ctx=N][,conc=N][,tp=N][,name=X][,kv=fp8][,quant=fp8]`` → ``PlacementModel``."""
    model, *rest = text.split(",")
    fields: dict[str, Any] = {"model": model}
    for item in rest:
        key, _, value = item.partition("=")
        if key not in _PLAN_KEYS or not value:
            raise InvalidRequest(
                f"bad plan item {item!r} in {text!r}",
                hint="write MODEL,ctx=32768,conc=4 (keys: " + ", ".join(_PLAN_KEYS) + ")",
                field="models",
            )
        fields[_PLAN_KEYS[key]] = value
    return PlacementModel.model_validate(fields)


async def _plan(api: OptimizerApi, args: argparse.Namespace) -> int:
    req = PlanRequest(models=[parse_plan_model(m) for m in args.models], gpus=args.gpus)
    plan = await api.plan(req)
    if args.json:
        emit_json(plan.model_dump(mode="json"))
        return 0 if plan.fits else 1
    rows = [
        (
            a.name,
            ",".join(str(g) for g in a.gpus),
            gib(a.weights_bytes),
            f"{a.kv_capacity_tokens:,}",
            a.config.get("kv_cache_memory_bytes"),
            gib(a.bytes_per_gpu),
        )
        for a in plan.assignments
    ]
    out.print(
        table(None, ["model", "GPUs", "weights/GPU", "KV tokens", "--kv-cache-memory-bytes", "per GPU"], rows)
    )
    free = ", ".join(f"#{d.index} {gib(f)}" for d, f in zip(plan.devices, plan.free_after_bytes, strict=True))
    out.print(f"free after: {free}")
    if plan.fits:
        out.print("[green]everything fits[/]")
        return 0
    for u in plan.unplaced:
        out.print(f"[red]does not fit:[/] {u.name} — {u.reason}")
        for f in u.fixes[:4]:
            out.print(f"    → {f.description}")
    if plan.changes:
        out.print("smallest changes that fit the whole set:")
        for f in plan.changes[:5]:
            out.print(f"  → {f.description}")
    return 1


async def _gpus(api: OptimizerApi, args: argparse.Namespace) -> int:
    inv = await api.gpus(args.gpus)
    if args.json:
        emit_json(inv.model_dump(mode="json"))
        return 0
    if inv.no_gpu_reason:
        out.print(f"[yellow]{inv.no_gpu_reason}[/]")
    out.print(f"planning on: {inv.description} ({inv.source})")

    def row(d: DeviceView) -> tuple[Any, ...]:
        links = d.nvlink_links if d.nvlink_links is not None else "—"
        cc, bw = d.compute_capability or "—", d.bandwidth_gbs or "—"
        return (d.index, d.name, d.source, gib(d.memory_total_bytes), gib(d.memory_free_bytes), cc, bw, links)

    rows = [row(d) for d in inv.devices]
    out.print(table(None, ["#", "name", "source", "total", "free", "CC", "GB/s", "NVLink"], rows))
    for t in inv.topology:
        out.print(f"  GPU {t.a} ↔ GPU {t.b}: {t.level}")
    if inv.source == "host":
        out.print("[dim]declare hardware to plan for with optimizer.gpus, e.g. 2xH100-80GB[/]")
    return 0


async def _calibration(api: OptimizerApi, args: argparse.Namespace) -> int:
    view = await api.calibration(args.model, args.limit)
    if args.json:
        emit_json(view.model_dump(mode="json"))
        return 0

    def err(v: float | None) -> str:
        return "—" if v is None else f"{v * 100:+.1f}%"

    rows = [
        (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(e.at)),
            e.model,
            e.vllm_version,
            f"{e.predicted['kv_tokens']:,} / {e.reported['kv_tokens'] or 0:,}",
            err(e.errors.get("kv_tokens")),
            err(e.errors.get("weights")),
            err(e.errors.get("graph")),
        )
        for e in view.entries
    ]
    out.print(
        table(
            None,
            ["when", "model", "vLLM", "KV tokens pred / rep", "KV err", "weights err", "graph err"],
            rows,
        )
    )
    if view.correction is not None and view.correction.samples:
        c = view.correction
        out.print(
            f"correction from {c.samples} start(s): weights ×{c.weights:.3f}, graphs ×{c.graph:.3f}, "
            f"activation+overhead ×{c.residual:.3f}, fixed-pool KV tokens ×{c.kv_tokens:.3f}"
        )
    return 0
