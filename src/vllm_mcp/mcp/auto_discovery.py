"""MCP server `vllm-auto-discovery`: the models on disk, the vLLM servers running, and what
each can do. Every tool is a thin call to the daemon's discovery endpoints (docs/discovery.md);
the readable text is rendered here because Crush reads text only.

Tools: discover-models, get-model-info, assess-model, discover-endpoints, refresh-metadata.
Resource: ``vllm://discovery`` (counts, scan roots, the last endpoint probe).
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from vllm_mcp.api.discovery import (
    Assessment,
    AssessRequest,
    DiscoveredModel,
    EndpointQuery,
    EndpointScan,
    ModelDetail,
    ModelPage,
    ModelQuery,
    RefreshRequest,
    RefreshResult,
)
from vllm_mcp.client.discovery_api import DiscoveryApi
from vllm_mcp.errors import VllmMcpError
from vllm_mcp.mcp.base import Backend, Reply, Tools

SERVER_NAME = "vllm-auto-discovery"
RESOURCE_URI = "vllm://discovery"
INSTRUCTIONS = (
    "Finds models on disk (Hugging Face cache, model folders, GGUF files, LoRA adapters) and "
    "running vLLM servers, and says what each can do. discover-models lists and filters them "
    "(ids are what load-model takes); get-model-info shows one in full; assess-model says whether "
    "the installed vLLM supports it, which tool/reasoning parser flags to use and which GPUs it "
    "fits at what context; discover-endpoints probes for running vLLM servers; refresh-metadata "
    "rescans after files changed."
)
GIB = 1 << 30
#: Methods whose checkpoints pack several low-bit weights into one stored int32 element.
PACKED = ("awq", "gptq")  # and compressed-tensors in its pack-quantized format

ModelId = Annotated[
    str,
    Field(description="Model id from discover-models: org/name, org/name@revision, or a path.", min_length=1),
]


def _size(n: int | None) -> str:
    if n is None:
        return "? GiB"
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / (1 << 20):.1f} MiB"


def model_line(m: DiscoveredModel) -> str:
    """One line per model: id, kind, architecture, size, quantization, context, status."""
    meta = m.meta
    parts = [m.id, f"[{m.kind}]"]
    if meta is not None:
        parts.append(meta.architecture or meta.model_type or "?")
        if meta.param_count:
            q = meta.quantization
            packed = q is not None and (q.method in PACKED or "pack" in (q.detail or ""))
            parts.append(
                f"{meta.param_count / 1e9:.2f}B {'stored elements (packed)' if packed else 'params'}"
            )
        parts.append(_size(meta.weight_bytes))
        if meta.quantization:
            q = meta.quantization
            parts.append(q.detail if q.method == "gguf" and q.detail else q.method)
        elif meta.dtype:
            parts.append(meta.dtype)
        if meta.context_length:
            parts.append(f"ctx {meta.context_length:,}")
    if m.lora is not None:
        parts.append(f"LoRA r={m.lora.rank} on {m.lora.base_model}")
    if m.status != "ok":
        parts.append(f"{m.status.upper()}: {'; '.join(m.problems)}")
    return " · ".join(parts)


def page_text(page: ModelPage) -> str:
    if not page.models:
        roots = ", ".join(f"{r.path}{'' if r.exists else ' (missing)'}" for r in page.roots)
        return f"No models match ({page.total} in total). Scanned: {roots}."
    lines = [f"Models {page.offset + 1}-{page.offset + len(page.models)} of {page.total}:"]
    lines += [f"- {model_line(m)}" for m in page.models]
    if page.next_offset is not None:
        lines.append(f"More: call discover-models again with offset={page.next_offset}.")
    return "\n".join(lines)


def detail_text(d: ModelDetail) -> str:
    m, meta = d.model, d.model.meta
    lines = [model_line(m), f"path: {m.path}"]
    if m.revision:
        lines.append(f"revision: {m.revision}" + (f" (refs: {', '.join(m.refs)})" if m.refs else ""))
    if meta is not None:
        dims = [
            f"layers {meta.num_layers}",
            f"hidden {meta.hidden_size}",
            f"heads {meta.num_attention_heads}",
            f"KV heads {meta.num_kv_heads}",
            f"head dim {meta.head_dim}",
            f"vocab {meta.vocab_size}",
        ]
        lines.append("dims: " + ", ".join(dims))
        if meta.mla:
            lines.append(f"MLA: kv_lora_rank {meta.mla.kv_lora_rank}, rope dim {meta.mla.qk_rope_head_dim}")
        if meta.moe:
            lines.append(f"MoE: {meta.moe.num_experts} experts, {meta.moe.experts_per_token} per token")
        if meta.rope_scaling:
            lines.append(f"rope scaling: {meta.rope_scaling.type} x{meta.rope_scaling.factor}")
        if meta.sliding_window:
            lines.append(f"sliding window: {meta.sliding_window}")
    t = m.chat_template
    if t is not None and t.present:
        tools, thinking = t.tool_call_format or "no", t.reasoning_format or "no"
        lines.append(f"chat template: yes ({t.source}); tools: {tools}; reasoning: {thinking}")
    elif t is not None:
        lines.append("chat template: none")
    if m.generation is not None:
        lines.append(
            "generation defaults: " + ", ".join(f"{k}={v}" for k, v in m.generation if v is not None)
        )
    if m.hub is not None:
        h = m.hub
        lines.append(f"hub: license {h.license}, {h.downloads} downloads, {h.pipeline_tag}, gated {h.gated}")
    lines.append(f"hub status: {d.hub_status}")
    return "\n".join(lines)


def assessment_text(a: Assessment) -> str:
    reg = a.registry
    support = {True: "supported", False: "NOT supported", None: "not applicable"}[reg.supported]
    lines = [f"{a.model}: {support} by vLLM ({reg.architecture or 'no architecture'}; source: {reg.source})"]
    if a.suggested_flags:
        lines.append("Suggested engine flags: " + " ".join(a.suggested_flags))
    lines.append(f"Fit ({a.fit_method}):")
    for f in a.fits:
        ctx = f", context up to {f.max_context_tokens:,}" if f.max_context_tokens else ""
        lines.append(f"- {f.gpu}: {'fits' if f.fits else 'does not fit'}{ctx} — {f.note}")
    if not a.fits:
        lines.append("- (no device checked)")
    lines += [f"Note: {n}" for n in a.notes]
    return "\n".join(lines)


def endpoints_text(scan: EndpointScan) -> str:
    lines = [f"Probed {scan.probed} addresses in {scan.duration_ms:.0f} ms."]
    if not scan.endpoints:
        lines.append("No server answered. Pass targets like 127.0.0.1:8000-8010 to look elsewhere.")
    for e in scan.endpoints:
        if e.status == "vllm":
            models = ", ".join(f"{m.id} (max len {m.max_model_len})" for m in e.models) or "none"
            loras = f"; LoRA: {', '.join(x.id for x in e.loras)}" if e.loras else ""
            asleep = {True: "; asleep", False: "; awake", None: ""}[e.sleeping]
            lines.append(f"- {e.url}: vLLM {e.version or '?'} serving {models}{loras}{asleep} [{e.source}]")
        else:
            lines.append(f"- {e.url}: {e.status} — {e.detail} [{e.source}]")
    return "\n".join(lines)


def refresh_text(r: RefreshResult) -> str:
    return (
        f"Rescanned in {r.duration_ms:.0f} ms: {r.models} models ({r.read} folders read, {r.reused} "
        f"unchanged, {r.removed} gone; {r.broken} broken, {r.incomplete} incomplete). Hub: {r.hub}."
        + (f" Registry: {r.registry}." if r.registry else "")
    )


def register(server: MCPServer, backend: Backend, *, server_name: str = SERVER_NAME) -> None:
    tools = Tools(server, server_name)

    def api() -> DiscoveryApi:
        return DiscoveryApi(backend.daemon)

    @tools.tool("discover-models", title="Discover models on disk", read_only=True)
    async def discover_models(
        name: Annotated[
            str | None, Field(description="Case-insensitive substring of the id or name.")
        ] = None,
        architecture: Annotated[
            str | None, Field(description="Substring of the architecture, e.g. llama, qwen3, deepseek.")
        ] = None,
        quantization: Annotated[
            str | None,
            Field(
                description="awq, gptq, fp8, compressed-tensors, bitsandbytes, gguf, a GGUF type "
                "such as Q4_K_M, or none."
            ),
        ] = None,
        max_weight_gib: Annotated[
            float | None, Field(description="Only models whose weights take at most this many GiB.", ge=0)
        ] = None,
        kind: Annotated[
            Literal["model", "lora", "gguf"] | None, Field(description="model, lora or gguf.")
        ] = None,
        status: Annotated[
            Literal["ok", "incomplete", "broken"] | None, Field(description="ok, incomplete or broken.")
        ] = None,
        offset: Annotated[int, Field(description="Skip this many matches (paging).", ge=0)] = 0,
        limit: Annotated[int, Field(description="Matches per page (1-200).", ge=1, le=200)] = 25,
    ) -> Reply[ModelPage]:
        """List models, LoRA adapters and GGUF files found on disk, with exact sizes from the files."""
        query = ModelQuery(
            name=name,
            architecture=architecture,
            quantization=quantization,
            kind=kind,
            status=status,
            max_weight_bytes=int(max_weight_gib * GIB) if max_weight_gib is not None else None,
            offset=offset,
            limit=limit,
        )
        page = await api().models(query)
        return Reply(page, page_text(page))

    @tools.tool("get-model-info", title="Model details", read_only=True, open_world=True)
    async def get_model_info(model: ModelId) -> Reply[ModelDetail]:
        """Everything the files say about one model (dims, quantization, template, defaults), plus
        hub metadata when online (offline: local metadata only)."""
        detail = await api().model(model)
        return Reply(detail, detail_text(detail))

    @tools.tool("assess-model", title="Assess a model", read_only=True)
    async def assess_model(
        model: ModelId,
        gpus: Annotated[
            str | None, Field(description="Assess for this hardware instead, e.g. 1xH100-80GB or 2xRTX4090.")
        ] = None,
        gpu_memory_gib: Annotated[
            list[float] | None, Field(description="Or for GPUs of these sizes in GiB, e.g. [24, 48].")
        ] = None,
    ) -> Reply[Assessment]:
        """Is the model supported by the installed vLLM, which --tool-call-parser/--reasoning-parser
        fit its chat template, and which GPUs does it fit on at what context."""
        result = await api().assess(AssessRequest(model=model, gpus=gpus, gpu_memory_gib=gpu_memory_gib))
        return Reply(result, assessment_text(result))

    @tools.tool("discover-endpoints", title="Find running vLLM servers", read_only=True, open_world=True)
    async def discover_endpoints(
        targets: Annotated[
            list[str] | None,
            Field(description="Extra host:port or host:first-last to probe, e.g. ['127.0.0.1:8000-8010']."),
        ] = None,
        timeout_s: Annotated[
            float | None, Field(description="Per-request timeout in seconds.", gt=0, le=10)
        ] = None,
    ) -> Reply[EndpointScan]:
        """Probe VLLM_API_ENDPOINT, VLLM_HOST/VLLM_PORT, the configured ranges and `targets` for
        running vLLM servers: version, served models, max length, LoRA adapters, sleeping."""
        scan = await api().endpoints(EndpointQuery(targets=targets or [], timeout_s=timeout_s))
        return Reply(scan, endpoints_text(scan))

    @tools.tool("refresh-metadata", title="Rescan models", read_only=False, idempotent=True, open_world=True)
    async def refresh_metadata(
        full: Annotated[bool, Field(description="Re-read every model, not only changed folders.")] = False,
        hub: Annotated[
            bool, Field(description="Also fetch hub metadata (license, downloads) when online.")
        ] = True,
        registry: Annotated[
            bool, Field(description="Ask the installed vLLM for its registry again.")
        ] = False,
    ) -> Reply[RefreshResult]:
        """Rescan the model folders now (unchanged folders cost a stat each) and refresh hub metadata."""
        result = await api().refresh(RefreshRequest(full=full, hub=hub, registry=registry))
        return Reply(result, refresh_text(result))

    @server.resource(
        RESOURCE_URI, name="discovery", title="Discovered models and servers", mime_type="text/plain"
    )
    async def discovery_resource() -> str:
        """Counts of models by kind and status, the scan roots, and the last endpoint probe."""
        try:
            s = await api().summary()
        except VllmMcpError as exc:
            return f"Discovery unavailable: {exc.describe()}"
        lines = [f"Models by kind: {s.by_kind}", f"By status: {s.by_status}", "Scan roots:"]
        lines += [
            f"- {r.kind} {r.path}: {r.models} models{'' if r.exists else ' (missing)'}" for r in s.roots
        ]
        lines.append(f"Registry: {s.registry or 'not asked yet (assess-model asks it)'}")
        lines.append(
            endpoints_text(s.endpoints) if s.endpoints else "Endpoints: not probed yet (discover-endpoints)."
        )
        return "\n".join(lines)
