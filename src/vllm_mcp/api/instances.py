"""Wire schemas for vLLM instances, presets and their events (control API and MCP tools).

``LoadRequest`` fields left as ``None`` mean "not given": the supervisor fills them from the
preset (if named) and then from ``engine_defaults`` (the seed's ``VLLM_*`` variables), so a
request only says what it wants to change. ``EngineSpec`` (core) does the validation.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import Event, State


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpecFields(_Wire):
    """The engine fields shared by load requests and presets; ``None`` = not given."""

    served_name: str | None = Field(
        None, description="Name clients use as `model` in API calls; default: last segment of the model."
    )
    tensor_parallel_size: int | None = Field(None, description="GPUs per pipeline stage (≥ 1).")
    pipeline_parallel_size: int | None = Field(None, description="Pipeline stages (≥ 1).")
    gpu_memory_utilization: float | None = Field(
        None, description="Fraction (0, 1] of each GPU vLLM may use; excludes kv_cache_memory_bytes."
    )
    kv_cache_memory_bytes: int | None = Field(
        None, description="Exact KV-cache size in bytes; excludes gpu_memory_utilization."
    )
    max_model_len: int | None = Field(None, description="Context length in tokens (default: the model's).")
    dtype: str | None = Field(None, description="Weights dtype: auto, half, float16, bfloat16, float32.")
    quantization: str | None = Field(None, description="Quantization method, e.g. awq, gptq, fp8.")
    kv_cache_dtype: str | None = Field(None, description="KV-cache dtype: auto, fp8, fp8_e4m3, fp8_e5m2.")
    enforce_eager: bool | None = Field(None, description="Skip CUDA graphs / torch.compile (faster start).")
    enable_lora: bool | None = Field(None, description="Allow LoRA adapters to be loaded at runtime.")
    max_loras: int | None = Field(None, description="LoRA adapters resident at once (needs enable_lora).")
    max_lora_rank: int | None = Field(None, description="Largest LoRA rank accepted (needs enable_lora).")
    gpus: list[int] | None = Field(None, description="GPU indices for CUDA_VISIBLE_DEVICES; default: none.")
    port: int | None = Field(None, description="Port to serve on; default: a free one from the range.")
    extra_flags: list[str] | None = Field(
        None,
        description="Extra engine flags from a short allowlist, e.g. ['--max-num-seqs', '8'].",
    )

    def given(self) -> dict[str, Any]:
        """The engine fields that were set, by name (``model`` included where the class has it)."""
        keys = set(SpecFields.model_fields) | {"model"}
        return {k: v for k, v in self.model_dump(include=keys).items() if v is not None}


class LoadRequest(SpecFields):
    """Start a model (or return the instance already serving it)."""

    model: str | None = Field(
        None, description="Hugging Face id (org/name) or local path; may be omitted when preset is given."
    )
    preset: str | None = Field(None, description="Name of a saved preset to start from.")
    force: bool = Field(
        False,
        description="If the served name is taken by a different config, unload that one first; also "
        "start even if the memory estimator says the config cannot fit.",
    )
    wait: bool = Field(False, description="Wait (bounded by timeout_s) until the instance is ready.")
    timeout_s: float = Field(45.0, gt=0, le=3600, description="Longest wait when wait is true.")


class EngineSpecView(_Wire):
    """The resolved engine configuration of an instance."""

    model: str
    served_name: str
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    max_model_len: int | None = None
    dtype: str | None = None
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    enforce_eager: bool = False
    enable_lora: bool = False
    max_loras: int | None = None
    max_lora_rank: int | None = None
    gpus: list[int] = Field(default_factory=list)
    port: int | None = None
    extra_flags: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, spec: EngineSpec) -> EngineSpecView:
        return cls.model_validate(spec.to_dict())


class ErrorInfo(_Wire):
    """Why an instance failed: the message, the process exit code and the end of its log."""

    message: str
    code: str = Field("engine_error", description="Error code, e.g. engine_start_failed.")
    exit_code: int | None = None
    log_tail: str = ""


class InstanceView(_Wire):
    """One vLLM instance as the daemon sees it."""

    name: str = Field(description="The served name (also the instance's key).")
    model: str = Field(description="Model source: HF id or local path.")
    state: State
    port: int | None = None
    base_url: str | None = Field(None, description="Where the instance's OpenAI API answers.")
    pid: int | None = Field(None, description="Process (group leader) id; None when not running.")
    external: bool = Field(False, description="True for a vLLM this daemon did not start (never killed).")
    gpus: list[int] = Field(default_factory=list)
    spec: EngineSpecView | None = Field(None, description="The engine config (None for external ones).")
    loras: list[str] = Field(default_factory=list, description="LoRA adapters loaded at runtime.")
    sleep_level: int | None = Field(None, description="1 or 2 while sleeping.")
    started_at: float | None = None
    ready_at: float | None = None
    state_since: float = Field(description="Unix time of the last transition.")
    last_error: ErrorInfo | None = None
    restarts: int = Field(0, description="Automatic restarts after crashes.")
    log_path: str | None = None


class SleepRequest(_Wire):
    level: Literal[1, 2] = Field(
        1, description="1: offload weights to CPU (fast wake); 2: discard weights (frees most memory)."
    )


class LoraRequest(_Wire):
    lora_name: str = Field(description="Name clients use as `model` to reach the adapter.")
    lora_path: str = Field(description="Local folder of a PEFT-format adapter.")


class LogPage(_Wire):
    """A page of an instance's log. Pass ``next_offset`` as ``before`` for the page before."""

    lines: list[str]
    offset: int = Field(description="Line number (0-based) of the first line in this page.")
    next_offset: int | None = Field(None, description="`before` for the previous page; None at the top.")
    total_lines: int
    path: str


class PresetIn(SpecFields):
    """A named, reusable load configuration."""

    name: str = Field(description="Preset name (letters, digits, . _ -).")
    model: str = Field(description="Hugging Face id (org/name) or local path.")
    description: str = Field("", description="What this preset is for.")


class PresetView(PresetIn):
    created_at: float
    updated_at: float


class InstanceEvent(_Wire):
    """One lifecycle transition (or a progress note) of an instance."""

    name: str
    state: State
    event: Event | Literal["progress"]
    at: float
    detail: str = ""
