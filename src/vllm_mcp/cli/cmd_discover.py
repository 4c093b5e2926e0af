"""`vllm-mcp discover` — models on disk (and, with --endpoints, running vLLM servers) as a table.

vllm-mcp discover                      every model, adapter and GGUF file found
vllm-mcp discover --quant awq --max-gib 10
vllm-mcp discover --refresh            rescan now and fetch hub metadata (online only)
vllm-mcp discover --endpoints          also probe for running vLLM servers
vllm-mcp discover --model ORG/NAME     one model in full, with its assessment
"""

from __future__ import annotations

import argparse
from typing import Any

from vllm_mcp.api.discovery import (
    Assessment,
    AssessRequest,
    DiscoveredModel,
    EndpointQuery,
    EndpointScan,
    ModelPage,
    ModelQuery,
    RefreshRequest,
)
from vllm_mcp.cli.common import add_json_flag, emit_json, out, run_async, settings_from, table
from vllm_mcp.client import DaemonClient
from vllm_mcp.client.discovery_api import DiscoveryApi

GIB = 1 << 30


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("discover", help="models found on disk, and running vLLM servers")
    p.add_argument("--name", help="substring of the id or name")
    p.add_argument("--arch", dest="architecture", help="substring of the architecture, e.g. llama")
    p.add_argument("--quant", dest="quantization", help="awq, gptq, fp8, gguf, Q4_K_M, … or none")
    p.add_argument("--max-gib", type=float, help="only models whose weights fit in this many GiB")
    p.add_argument("--kind", choices=("model", "lora", "gguf"))
    p.add_argument("--status", choices=("ok", "incomplete", "broken"))
    p.add_argument("--limit", type=int, default=200, help="rows per page (default 200)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--refresh", action="store_true", help="rescan now and refresh hub metadata")
    p.add_argument("--endpoints", action="store_true", help="also probe for running vLLM servers")
    p.add_argument("--model", help="show one model in full, with its assessment")
    p.add_argument("--gpus", help="with --model: assess against this hardware, e.g. 1xRTX4090")
    add_json_flag(p)
    p.set_defaults(handler=discover_cmd)


def _size(n: int | None) -> str:
    """Bytes for a person: MiB below 1 GiB (test models), GiB above."""
    if n is None:
        return "—"
    return f"{n / GIB:,.2f} GiB" if n >= GIB else f"{n / (1 << 20):,.1f} MiB"


def _params(n: int | None) -> str:
    if n is None:
        return "—"
    return f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def model_row(m: DiscoveredModel) -> list[Any]:
    meta = m.meta
    quant = meta.quantization if meta else None
    quant_text = (quant.detail if quant and quant.method == "gguf" else quant.method) if quant else ""
    ctx = f"{meta.context_length:,}" if meta and meta.context_length else "—"
    return [
        m.id,
        m.kind,
        meta.architecture if meta and meta.architecture else "—",
        _params(meta.param_count if meta else None),
        _size(meta.weight_bytes if meta else None),
        quant_text or (meta.dtype if meta and meta.dtype else ""),
        ctx,
        m.status if not m.problems else f"{m.status}: {m.problems[0]}",
    ]


def render_page(page: ModelPage) -> None:
    cols = ["id", "kind", "architecture", "params", "weights", "quant/dtype", "context", "status"]
    out.print(table(None, cols, [model_row(m) for m in page.models]))
    shown = f"{page.offset + 1}-{page.offset + len(page.models)}" if page.models else "0"
    more = f"; next page: --offset {page.next_offset}" if page.next_offset is not None else ""
    out.print(f"{shown} of {page.total} models{more}")
    for root in page.roots:
        out.print(f"  {root.kind:8} {root.path}" + ("" if root.exists else "  (does not exist)"))


def render_endpoints(scan: EndpointScan) -> None:
    rows = [
        [
            e.url,
            e.status,
            e.version or "",
            ", ".join(m.id for m in e.models),
            ", ".join(m.id for m in e.loras),
            e.max_model_len or "",
            "" if e.sleeping is None else ("yes" if e.sleeping else "no"),
            e.source,
        ]
        for e in scan.endpoints
    ]
    cols = ["url", "status", "version", "models", "LoRA", "max len", "asleep", "from"]
    out.print(table(None, cols, rows))
    out.print(f"probed {scan.probed} addresses in {scan.duration_ms:.0f} ms")


def render_assessment(a: Assessment) -> None:
    reg = a.registry
    support = {True: "supported", False: "NOT supported", None: "unknown"}[reg.supported]
    out.print(f"vLLM support: {support} ({reg.architecture or 'no architecture'}; {reg.source})")
    if a.suggested_flags:
        out.print("suggested flags: " + " ".join(a.suggested_flags))
    out.print(f"fit: {a.fit_method}")
    rows = [
        [f.gpu, _size(f.memory_bytes), "yes" if f.fits else "no", f.max_context_tokens or "", f.note]
        for f in a.fits
    ]
    if rows:
        out.print(table(None, ["device", "memory", "fits", "max context", "note"], rows))
    for note in a.notes:
        out.print(f"note: {note}")


def _query(args: argparse.Namespace) -> ModelQuery:
    return ModelQuery(
        name=args.name,
        architecture=args.architecture,
        quantization=args.quantization,
        max_weight_bytes=int(args.max_gib * GIB) if args.max_gib is not None else None,
        kind=args.kind,
        status=args.status,
        offset=args.offset,
        limit=args.limit,
    )


async def _one(api: DiscoveryApi, args: argparse.Namespace) -> dict[str, Any]:
    detail = await api.model(args.model)
    assessment = await api.assess(AssessRequest(model=args.model, gpus=args.gpus))
    if not args.json:
        out.print(
            table(
                None,
                ["id", "kind", "architecture", "params", "weights", "quant/dtype", "context", "status"],
                [model_row(detail.model)],
            )
        )
        out.print(f"path: {detail.model.path}\nhub: {detail.hub_status}")
        for problem in detail.model.problems:
            out.print(f"problem: {problem}")
        render_assessment(assessment)
    return {"model": detail.model_dump(mode="json"), "assessment": assessment.model_dump(mode="json")}


def discover_cmd(args: argparse.Namespace) -> int:
    settings = settings_from(args).settings

    async def go() -> int:
        result: dict[str, Any] = {}
        async with DaemonClient(settings) as client:
            api = DiscoveryApi(client)
            if args.refresh:
                refreshed = await api.refresh(RefreshRequest())
                result["refresh"] = refreshed.model_dump(mode="json")
                if not args.json:
                    out.print(
                        f"rescanned: {refreshed.read} read, {refreshed.reused} unchanged, "
                        f"{refreshed.removed} gone; hub: {refreshed.hub}"
                    )
            if args.model:
                result.update(await _one(api, args))
            else:
                page = await api.models(_query(args))
                result["page"] = page.model_dump(mode="json")
                if not args.json:
                    render_page(page)
            if args.endpoints:
                scan = await api.endpoints(EndpointQuery())
                result["endpoints"] = scan.model_dump(mode="json")
                if not args.json:
                    render_endpoints(scan)
        if args.json:
            emit_json(result)
        return 0

    return run_async(go)
