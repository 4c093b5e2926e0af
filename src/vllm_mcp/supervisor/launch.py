"""What a vLLM child gets: its argv, its environment, and checks on its model source.

The environment is built from scratch (FACTS.md): vLLM reads ``VLLM_PORT`` (base of its internal
ports), ``VLLM_API_KEY``, ``VLLM_HOST_IP`` and many other ``VLLM_*`` names, and the manager's
own config uses ``VLLM_HOST``/``VLLM_PORT``/``VLLM_API_KEY``/``VLLM_API_ENDPOINT`` with a different
meaning. So only ``PASSTHROUGH`` names are copied from the daemon's environment; then the vLLM
variables we mean are set; then ``engine.extra_env`` (explicit configuration) is applied.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from vllm_mcp.config import Settings
from vllm_mcp.core.engine_spec import HF_ID_RE, EngineSpec, is_local_path
from vllm_mcp.errors import ConfigError, InvalidRequest, NotFound

#: Names copied from the daemon's environment into every child (when set).
PASSTHROUGH = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "XDG_CACHE_HOME",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_TOKEN",
    "CUDA_HOME",
    "LD_LIBRARY_PATH",
    "CUDA_VISIBLE_DEVICES",
)


def detect_platform(settings: Settings) -> str:
    """``cuda`` or ``cpu``: ``engine.platform`` unless it is ``auto``, then "is an NVIDIA GPU
    visible" (the CPU build rejects ``--enable-sleep-mode``; its dev endpoints work without)."""
    configured = settings.engine.platform
    if configured != "auto":
        return configured
    return "cuda" if Path("/dev/nvidiactl").exists() else "cpu"


def resolve_vllm_bin(settings: Settings) -> str:
    """The absolute path of the vllm executable (argv[0] is stored and matched on adoption)."""
    configured = settings.engine.vllm_bin
    found = shutil.which(configured)
    if found is None:
        raise ConfigError(
            f"the vllm executable {configured!r} was not found or is not executable",
            key="engine.vllm_bin",
            hint="Install vLLM, or set engine.vllm_bin (VLLM_MCP__ENGINE__VLLM_BIN) to its path.",
        )
    return os.path.abspath(found)


def build_argv(vllm_bin: str, spec: EngineSpec, *, host: str, port: int, platform: str) -> list[str]:
    argv = [vllm_bin, "serve", *spec.engine_args(), "--host", host, "--port", str(port)]
    if platform == "cuda":
        argv.append("--enable-sleep-mode")
    return argv


def child_env(
    settings: Settings, spec: EngineSpec, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The complete environment of a vLLM child (nothing else of the daemon's leaks in)."""
    parent = os.environ if environ is None else environ
    env = {name: parent[name] for name in PASSTHROUGH if name in parent}
    env.update(
        VLLM_SERVER_DEV_MODE="1",  # /sleep, /wake_up, /is_sleeping, /collective_rpc
        VLLM_HOST_IP=settings.engine.host,
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
    )
    if spec.enable_lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    if settings.engine.hf_hub_offline:
        env["HF_HUB_OFFLINE"] = "1"
    if settings.models.cache_dir is not None:
        env["HF_HUB_CACHE"] = str(settings.models.cache_dir)
    if spec.gpus:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)
    env.update(settings.engine.extra_env)
    return env


def check_model_source(settings: Settings, spec: EngineSpec) -> None:
    """Refuse a model source the daemon may not load, before anything starts.

    A local path must exist and lie under ``models.allowed_roots`` or ``models.cache_dir``
    (symlinks resolved). An HF id must look like ``org/name``; when the hub is offline it must
    already be in the cache, otherwise vLLM would only fail minutes later.
    """
    if is_local_path(spec.model):
        _check_local(settings, spec.model)
    elif settings.engine.hf_hub_offline and not _in_hf_cache(settings, spec.model):
        raise NotFound(
            f"model {spec.model!r} is not in the local Hugging Face cache and the hub is offline",
            hint="Download it first, give a local path, or turn engine.hf_hub_offline off.",
            field="model",
        )
    elif not HF_ID_RE.fullmatch(spec.model):  # EngineSpec checked it; keep the rule local too
        raise InvalidRequest(f"model: {spec.model!r} is not an org/name id", field="model")


def _roots(settings: Settings) -> list[Path]:
    roots = list(settings.models.allowed_roots)
    if settings.models.cache_dir is not None:
        roots.append(settings.models.cache_dir)
    return [r.expanduser().resolve() for r in roots]


def _check_local(settings: Settings, model: str) -> None:
    path = _under_roots(settings, model, "model")
    if not (path / "config.json").is_file() and not path.is_file():
        raise NotFound(
            f"model: no model at {model} (no config.json there)",
            hint="point model at a folder holding config.json and the weights",
            field="model",
        )


def check_lora_path(settings: Settings, lora_path: str) -> str:
    """The resolved adapter folder: a local path under the allowed roots holding
    ``adapter_config.json`` (``InvalidRequest``/``NotFound`` otherwise)."""
    if not is_local_path(lora_path):
        raise InvalidRequest(
            f"lora_path: {lora_path!r} is not a local path",
            hint="give the absolute path of a PEFT adapter folder",
            field="lora_path",
        )
    path = _under_roots(settings, lora_path, "lora_path")
    if not (path / "adapter_config.json").is_file():
        raise NotFound(
            f"lora_path: no adapter at {lora_path} (no adapter_config.json there)",
            hint="point lora_path at a PEFT adapter folder",
            field="lora_path",
        )
    return str(path)


def _under_roots(settings: Settings, given: str, field: str) -> Path:
    path = Path(given).expanduser().resolve()
    roots = _roots(settings)
    if not any(path == root or path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots) or "none configured"
        raise InvalidRequest(
            f"{field}: the path {given} is outside the allowed model roots",
            hint=f"use a path under one of: {allowed} (models.allowed_roots / VLLM_MODEL_CACHE_DIR)",
            field=field,
        )
    return path


def _in_hf_cache(settings: Settings, repo_id: str) -> bool:
    folder = "models--" + repo_id.replace("/", "--")
    candidates = []
    if settings.models.cache_dir is not None:
        candidates.append(settings.models.cache_dir)
    hf_home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    candidates.append(Path(hf_home))
    return any((c.expanduser() / folder / "snapshots").is_dir() for c in candidates)
