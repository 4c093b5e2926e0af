"""What to run: ``EngineSpec``, the validated engine configuration of one vLLM instance. Pure.

A spec is checked when it is built (``EngineSpec(...)`` raises ``InvalidRequest`` naming the
field), so a spec that exists is a spec that can be turned into argv. Checks that need the disk
or the settings (a local path under the allowed roots, a port that is free) live in the
supervisor; this module does no I/O.

Extra engine flags are limited to ``ALLOWLIST``: an agent may tune a handful of scheduler knobs,
never pass arbitrary flags (``--trust-remote-code`` is left out on purpose: it runs code shipped
with a model repo). Values are checked per flag and may never look like a flag themselves, so a
value cannot smuggle in a second option (argument injection), even though argv lists mean no
shell is involved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from vllm_mcp.errors import InvalidRequest

#: An HF repo id: ``org/name`` (no scheme, no extra path segments).
HF_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
#: A served name is a URL path segment and an OpenAI ``model`` value: keep it plain.
SERVED_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_WORD_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

DTYPES = frozenset({"auto", "half", "float16", "bfloat16", "float", "float32"})
KV_CACHE_DTYPES = frozenset({"auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "bfloat16", "float16"})


def _int_at_least(lo: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not re.fullmatch(r"\d{1,10}", value) or int(value) < lo:
            return f"an integer ≥ {lo}"
        return None

    return check


def _non_negative_number(value: str) -> str | None:
    if not re.fullmatch(r"\d{1,6}(\.\d{1,6})?", value):
        return "a number ≥ 0"
    return None


def _word(value: str) -> str | None:
    return None if _WORD_RE.fullmatch(value) else "a lowercase name like 'hermes' or 'qwen3'"


def _text(value: str) -> str | None:
    if not value or len(value) > 4096 or "\x00" in value or "\n" in value:
        return "a non-empty single-line value"
    return None


#: Extra engine flags an agent may pass: flag → value check (None: the flag takes no value).
ALLOWLIST: dict[str, Callable[[str], str | None] | None] = {
    "--max-num-seqs": _int_at_least(1),
    "--max-num-batched-tokens": _int_at_least(1),
    "--block-size": _int_at_least(1),
    "--seed": _int_at_least(0),
    "--swap-space": _non_negative_number,
    "--tool-call-parser": _word,
    "--reasoning-parser": _word,
    "--enable-auto-tool-choice": None,
    "--chat-template": _text,
    "--generation-config": _text,
    "--enable-prefix-caching": None,
    "--no-enable-prefix-caching": None,
}
_EXCLUSIVE = (("--enable-prefix-caching", "--no-enable-prefix-caching"),)


def is_local_path(model: str) -> bool:
    """A model source given as a path (absolute, ``./…``, ``../…`` or ``~…``), not an HF id."""
    return model.startswith(("/", "./", "../", "~")) or model in {".", ".."}


def default_served_name(model: str) -> str:
    """The served name when none is given: the last path segment of the model source."""
    tail = model.rstrip("/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._:-]", "-", tail).lstrip("._:-")[:128]
    return name or "model"


def normalize_flags(tokens: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Check extra flags against ``ALLOWLIST`` and return them as canonical argv tokens.

    Accepts ``("--seed", "3")`` and ``("--seed=3",)``; returns ``("--seed", "3")``. Raises
    ``InvalidRequest`` (field ``extra_flags``) for an unknown flag, a missing or bad value, a value
    that starts like a flag, a repeated flag, or mutually exclusive flags.
    """
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(tokens):
        flag, eq, inline = tokens[i].partition("=")
        if not flag.startswith("--"):
            raise _bad_flag(f"expected a flag like --max-num-seqs, got {tokens[i]!r}")
        if flag not in ALLOWLIST:
            raise _bad_flag(f"engine flag {flag} is not allowed")
        if flag in seen:
            raise _bad_flag(f"engine flag {flag} is given twice")
        seen.add(flag)
        i += 1
        if ALLOWLIST[flag] is None:
            if eq:
                raise _bad_flag(f"engine flag {flag} takes no value")
            out.append(flag)
            continue
        if not eq:
            if i >= len(tokens):
                raise _bad_flag(f"engine flag {flag} needs a value")
            inline = tokens[i]
            i += 1
        out += [flag, _checked_value(flag, inline)]
    for group in _EXCLUSIVE:
        if all(f in seen for f in group):
            raise _bad_flag(f"engine flags {' and '.join(group)} exclude each other")
    return tuple(out)


def _checked_value(flag: str, value: str) -> str:
    check = ALLOWLIST[flag]
    if value.startswith("-"):
        raise _bad_flag(f"the value of {flag} may not start with '-': {value!r}")
    problem = check(value) if check is not None else None
    if problem is not None:
        raise _bad_flag(f"the value of {flag} must be {problem}, got {value!r}")
    return value


def _bad_flag(message: str) -> InvalidRequest:
    allowed = ", ".join(sorted(ALLOWLIST))
    return InvalidRequest(message, hint=f"allowed extra engine flags: {allowed}", field="extra_flags")


def _invalid(field_name: str, message: str, hint: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"{field_name}: {message}", hint=hint, field=field_name)


@dataclass(frozen=True)
class EngineSpec:
    """The engine configuration of one instance. Constructing one validates it."""

    model: str
    served_name: str = ""  # "" → default_served_name(model)
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
    gpus: tuple[int, ...] = ()
    port: int | None = None
    extra_flags: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.served_name:
            object.__setattr__(self, "served_name", default_served_name(self.model))
        object.__setattr__(self, "gpus", tuple(self.gpus))
        object.__setattr__(self, "extra_flags", normalize_flags(tuple(self.extra_flags)))
        self.validate()

    def validate(self) -> None:  # noqa: PLR0912 - one flat list of field checks reads best
        """Raise ``InvalidRequest`` naming the first bad field."""
        if not self.model or "\x00" in self.model or self.model.startswith("-"):
            raise _invalid("model", f"not a model id or path: {self.model!r}")
        if not is_local_path(self.model) and not HF_ID_RE.fullmatch(self.model):
            raise _invalid(
                "model",
                f"{self.model!r} is neither a Hugging Face id (org/name) nor a local path",
                "give an id like 'Qwen/Qwen2.5-0.5B-Instruct' or an absolute path to a model folder",
            )
        if not SERVED_NAME_RE.fullmatch(self.served_name):
            raise _invalid(
                "served_name",
                f"{self.served_name!r} is not a valid served name",
                "use letters, digits and . _ : - (at most 128), starting with a letter or digit",
            )
        for name in ("tensor_parallel_size", "pipeline_parallel_size"):
            value = getattr(self, name)
            if not 1 <= value <= 64:
                raise _invalid(name, f"must be between 1 and 64, got {value}")
        if self.gpu_memory_utilization is not None and self.kv_cache_memory_bytes is not None:
            raise _invalid(
                "kv_cache_memory_bytes",
                "gpu_memory_utilization and kv_cache_memory_bytes exclude each other",
                "give one of the two memory knobs, not both",
            )
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise _invalid(
                "gpu_memory_utilization",
                f"must be a fraction in (0, 1], got {self.gpu_memory_utilization}",
                "e.g. 0.9 means 90% of each GPU's memory",
            )
        if self.kv_cache_memory_bytes is not None and self.kv_cache_memory_bytes <= 0:
            raise _invalid("kv_cache_memory_bytes", f"must be > 0, got {self.kv_cache_memory_bytes}")
        if self.max_model_len is not None and not 1 <= self.max_model_len <= 10_000_000:
            raise _invalid("max_model_len", f"must be a positive token count, got {self.max_model_len}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise _invalid("dtype", f"unknown dtype {self.dtype!r}", f"one of: {', '.join(sorted(DTYPES))}")
        if self.quantization is not None and not _WORD_RE.fullmatch(self.quantization):
            raise _invalid("quantization", f"not a quantization method name: {self.quantization!r}")
        if self.kv_cache_dtype is not None and self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise _invalid(
                "kv_cache_dtype",
                f"unknown kv-cache dtype {self.kv_cache_dtype!r}",
                f"one of: {', '.join(sorted(KV_CACHE_DTYPES))}",
            )
        for name in ("max_loras", "max_lora_rank"):
            value = getattr(self, name)
            if value is not None and not self.enable_lora:
                raise _invalid(name, "needs enable_lora", "set enable_lora=true, or leave it out")
            if value is not None and not 1 <= value <= 1024:
                raise _invalid(name, f"must be between 1 and 1024, got {value}")
        if any(not isinstance(g, int) or g < 0 for g in self.gpus) or len(set(self.gpus)) != len(self.gpus):
            raise _invalid("gpus", f"must be distinct GPU indices ≥ 0, got {list(self.gpus)}")
        if self.gpus and len(self.gpus) != self.tensor_parallel_size * self.pipeline_parallel_size:
            raise _invalid(
                "gpus",
                f"{len(self.gpus)} GPUs given for tensor×pipeline parallel "
                f"{self.tensor_parallel_size}×{self.pipeline_parallel_size}",
                "give exactly tensor_parallel_size × pipeline_parallel_size GPU indices, or none",
            )
        if self.port is not None and not 1024 <= self.port <= 65535:
            raise _invalid("port", f"must be between 1024 and 65535, got {self.port}")

    def identity(self) -> tuple[Any, ...]:
        """What decides "this model is already loaded": everything but where it runs.

        Port and GPUs are placement, not identity: a second load of the same model and flags
        reuses the running instance wherever it is.
        """
        return tuple(getattr(self, f.name) for f in fields(self) if f.name not in {"port", "gpus"})

    def engine_args(self) -> list[str]:
        """The ``vllm serve`` arguments for this spec, without host, port and platform flags."""
        args = [self.model, "--served-model-name", self.served_name]
        tp, pp = self.tensor_parallel_size, self.pipeline_parallel_size
        optional: list[tuple[str, object]] = [
            ("--tensor-parallel-size", tp if tp > 1 else None),
            ("--pipeline-parallel-size", pp if pp > 1 else None),
            ("--gpu-memory-utilization", self.gpu_memory_utilization),
            ("--kv-cache-memory-bytes", self.kv_cache_memory_bytes),
            ("--max-model-len", self.max_model_len),
            ("--dtype", self.dtype),
            ("--quantization", self.quantization),
            ("--kv-cache-dtype", self.kv_cache_dtype),
            ("--max-loras", self.max_loras),
            ("--max-lora-rank", self.max_lora_rank),
        ]
        for flag, value in optional:
            if value is not None:
                args += [flag, str(value)]
        if self.enforce_eager:
            args.append("--enforce-eager")
        if self.enable_lora:
            args.append("--enable-lora")
        return args + list(self.extra_flags)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (tuples as lists), for persistence and the wire."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSpec:
        """Inverse of ``to_dict``; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequest(f"unknown engine spec fields: {', '.join(unknown)}", field=unknown[0])
        kwargs = dict(data)
        for key in ("gpus", "extra_flags"):
            if key in kwargs and kwargs[key] is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)
