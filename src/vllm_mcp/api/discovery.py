"""Wire schemas of auto-discovery: models found on disk, running vLLM servers, assessments.

Control-API routes (documented in docs/discovery.md):

    GET  /v1/discovery/models?name=&architecture=&quantization=&max_weight_bytes=&kind=&status=
                              &offset=&limit=                         → ModelPage
    GET  /v1/discovery/model?id=<model id>                            → ModelDetail
    POST /v1/discovery/assess     AssessRequest                       → Assessment
    POST /v1/discovery/endpoints  EndpointQuery                       → EndpointScan
    POST /v1/discovery/refresh    RefreshRequest                      → RefreshResult
    GET  /v1/discovery/summary                                        → DiscoverySummary

A model id is what you would hand to ``vllm serve``: ``org/name`` for the revision that
``refs/main`` of a Hugging Face cache repo points to, ``org/name@<revision>`` for its other
revisions, ``<repo or revision id>/<file>.gguf`` for a GGUF file inside a repo, and the absolute
path for anything under a plain folder root.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_mcp.core.model_meta import ModelMeta

ModelKind = Literal["model", "lora", "gguf"]
EntryStatus = Literal["ok", "incomplete", "broken"]
EntrySource = Literal["hf-cache", "local"]
EndpointStatus = Literal["vllm", "not-vllm", "unreachable"]

MAX_PAGE = 200


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatTemplateInfo(_Wire):
    present: bool
    source: str | None = Field(None, description="File (or GGUF key) the template came from.")
    mentions_tools: bool = Field(False, description="The template renders a `tools` list.")
    tool_call_format: str | None = Field(None, description="The tool-call syntax the template emits.")
    reasoning_format: str | None = Field(None, description="The reasoning syntax, e.g. <think> blocks.")
    tool_call_parser: str | None = Field(None, description="vLLM --tool-call-parser for that syntax.")
    reasoning_parser: str | None = Field(None, description="vLLM --reasoning-parser for that syntax.")


class GenerationDefaults(_Wire):
    """``generation_config.json`` defaults vLLM applies unless a request overrides them."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    max_new_tokens: int | None = None
    do_sample: bool | None = None


class LoraInfo(_Wire):
    base_model: str | None = Field(None, description="base_model_name_or_path of adapter_config.json.")
    base_id: str | None = Field(None, description="Id of that base model when it was found on disk too.")
    rank: int | None = None
    alpha: float | None = None
    target_modules: list[str] = Field(default_factory=list)
    peft_type: str | None = None


class HubInfo(_Wire):
    license: str | None = None
    downloads: int | None = None
    likes: int | None = None
    pipeline_tag: str | None = None
    gated: bool | str | None = Field(None, description="False, or the gating mode ('auto', 'manual').")
    library_name: str | None = None
    last_modified: str | None = None
    fetched_at: float = Field(description="Unix time the hub answered.")


class DiscoveredModel(_Wire):
    id: str = Field(description="What to load it by (see the module docs).")
    name: str = Field(description="Short display name.")
    kind: ModelKind
    source: EntrySource
    path: str = Field(description="Folder (or GGUF file) on disk.")
    root: str = Field(description="The scan root it was found under.")
    repo_id: str | None = None
    revision: str | None = Field(None, description="HF cache snapshot (commit hash).")
    refs: list[str] = Field(default_factory=list, description="Branches/tags pointing at this revision.")
    status: EntryStatus
    problems: list[str] = Field(default_factory=list, description="Why it is broken or incomplete.")
    size_bytes: int = Field(
        0, description="Apparent size of its files (blobs shared by revisions count once each)."
    )
    file_count: int = 0
    weights_format: str | None = Field(None, description="safetensors, gguf or pytorch.")
    meta: ModelMeta | None = None
    chat_template: ChatTemplateInfo | None = None
    generation: GenerationDefaults | None = None
    lora: LoraInfo | None = None
    hub: HubInfo | None = None


class ScanRootInfo(_Wire):
    path: str
    kind: EntrySource
    exists: bool
    models: int = 0


class ModelQuery(_Wire):
    """Filters of a listing; every filter is optional and they combine with AND."""

    name: str | None = Field(None, description="Case-insensitive substring of the id or name.")
    architecture: str | None = Field(None, description="Case-insensitive substring of the architecture.")
    quantization: str | None = Field(
        None, description="Quantization method (awq, gptq, fp8, gguf, …), a GGUF type (Q4_K_M), or 'none'."
    )
    max_weight_bytes: int | None = Field(None, ge=0, description="Only models whose weights are this small.")
    kind: ModelKind | None = None
    status: EntryStatus | None = None
    offset: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=MAX_PAGE)


class ModelPage(_Wire):
    models: list[DiscoveredModel]
    total: int = Field(description="Matches before paging.")
    offset: int
    limit: int
    next_offset: int | None = Field(None, description="Pass as offset for the next page; null at the end.")
    scanned_at: float
    roots: list[ScanRootInfo]


class ModelDetail(_Wire):
    model: DiscoveredModel
    hub_status: str = Field(description="online, offline (showing local metadata), cached, or disabled.")


class AssessRequest(_Wire):
    model: str = Field(min_length=1, description="A discovered model id (see discover-models).")
    gpus: str | None = Field(
        None, description="Check against a declared inventory instead, e.g. '1xH100-80GB' or '2xRTX4090'."
    )
    gpu_memory_gib: list[float] | None = Field(
        None, description="Check against GPUs of these sizes instead of (or when there are no) local GPUs."
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="Fraction of each GPU vLLM may use (default: engine_defaults)."
    )


class RegistryCheck(_Wire):
    architecture: str | None
    supported: bool | None = Field(description="None when the architecture is unknown.")
    source: str = Field(description="Which list answered: the installed vLLM's registry or the bundled list.")
    vllm_version: str | None = None
    bundled: bool = Field(description="True when no vLLM answered and the bundled list was used.")


class GpuFit(_Wire):
    gpu: str
    memory_bytes: int
    usable_bytes: int
    fits: bool
    max_context_tokens: int | None = Field(None, description="Tokens of KV cache left after the weights.")
    note: str = ""


class Assessment(_Wire):
    model: str
    status: EntryStatus
    registry: RegistryCheck
    tool_call_parser: str | None = None
    reasoning_parser: str | None = None
    suggested_flags: list[str] = Field(default_factory=list)
    fit_method: str
    fits: list[GpuFit] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ServedModel(_Wire):
    id: str
    root: str | None = None
    parent: str | None = Field(None, description="Base model of a LoRA adapter.")
    max_model_len: int | None = None


class EndpointReport(_Wire):
    url: str
    source: str = Field(description="Which setting named this address.")
    status: EndpointStatus
    version: str | None = None
    models: list[ServedModel] = Field(default_factory=list)
    loras: list[ServedModel] = Field(default_factory=list)
    max_model_len: int | None = None
    sleeping: bool | None = Field(None, description="None when the server does not say (no dev mode).")
    evidence: list[str] = Field(default_factory=list, description="Which vLLM signatures answered.")
    detail: str = ""


class EndpointQuery(_Wire):
    targets: list[str] = Field(
        default_factory=list, description="Extra host:port or host:first-last to probe this time."
    )
    timeout_s: float | None = Field(None, gt=0, le=30, description="Per-request timeout (default: settings).")


class EndpointScan(_Wire):
    endpoints: list[EndpointReport] = Field(
        description="Every vLLM and non-vLLM server that answered, and configured endpoints that did not."
    )
    probed: int = Field(description="host:port pairs probed.")
    duration_ms: float
    scanned_at: float


class RefreshRequest(_Wire):
    full: bool = Field(False, description="Forget the stat index and read every model again.")
    hub: bool = Field(True, description="Also fetch hub metadata for cached HF repos (online only).")
    registry: bool = Field(False, description="Ask the installed vLLM for its registry again.")


class RefreshResult(_Wire):
    models: int
    read: int = Field(description="Folders whose files changed and were read again.")
    reused: int = Field(description="Folders unchanged since the last scan (stat only, nothing read).")
    removed: int
    broken: int
    incomplete: int
    duration_ms: float
    hub: str = Field(description="online (n updated), offline (showing local metadata), or disabled.")
    registry: str | None = None


class DiscoverySummary(_Wire):
    scanned_at: float
    roots: list[ScanRootInfo]
    by_kind: dict[str, int]
    by_status: dict[str, int]
    registry: str | None = Field(None, description="Where the support check answers from, once known.")
    endpoints: EndpointScan | None = Field(None, description="The last endpoint probe, if any.")
