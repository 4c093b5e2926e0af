"""Load ``Settings`` from defaults < config file < environment, remembering each value's source.

Environment variables are read through an explicit table (``SEED_ENV``) so that the manager's
meaning of a ``VLLM_*`` name is documented in one place and never passed on to a vLLM child by
accident (the supervisor builds a child's environment from scratch). Any other setting can be
overridden as ``VLLM_MCP__<SECTION>__<KEY>`` (e.g. ``VLLM_MCP__ENGINE__VLLM_BIN``).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from vllm_mcp.config.settings import Settings, default_config_path
from vllm_mcp.errors import ConfigError

CONFIG_ENV = "VLLM_MCP_CONFIG"
NESTED_PREFIX = "VLLM_MCP__"

#: The seed's environment variables → dotted settings keys.
SEED_ENV: dict[str, str] = {
    "VLLM_API_ENDPOINT": "external.endpoint",
    "VLLM_API_KEY": "external.api_key",
    "VLLM_HOST": "external.host",
    "VLLM_PORT": "external.port",
    "VLLM_MODEL_CACHE_DIR": "models.cache_dir",
    "VLLM_GPU_MEMORY_UTILIZATION": "engine_defaults.gpu_memory_utilization",
    "VLLM_TENSOR_PARALLEL_SIZE": "engine_defaults.tensor_parallel_size",
    "VLLM_QUANTIZATION": "engine_defaults.quantization",
    "MONITOR_INTERVAL_MS": "monitor.interval_ms",
    "METRICS_RETENTION_HOURS": "monitor.retention_hours",
    "STATE_DB_PATH": "store.db_path",
    "ENCRYPTION_KEY": "store.encryption_key",
    "ENABLE_COMPRESSION": "store.compression",
}
ALERT_PREFIX = "ALERT_THRESHOLD_"  # ALERT_THRESHOLD_KV_CACHE_USAGE → monitor.alert_thresholds.kv_cache_usage


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    sources: dict[str, str]  # dotted key → "default" | "file:<path>" | "env:<NAME>"
    config_path: Path | None


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {part} is not a section", key=dotted)
    node[parts[-1]] = value


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and dotted != "engine.extra_env":
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}",
            key="(file)",
            hint="Fix the TOML syntax at the line named above.",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", key="(file)") from exc


def _env_values(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    out: dict[str, tuple[Any, str]] = {}
    for name, dotted in SEED_ENV.items():
        if name in env and env[name] != "":
            out[dotted] = (env[name], f"env:{name}")
    for name, raw in env.items():
        if name.startswith(ALERT_PREFIX) and raw != "":
            out[f"monitor.alert_thresholds.{name[len(ALERT_PREFIX) :].lower()}"] = (raw, f"env:{name}")
        elif name.startswith(NESTED_PREFIX) and raw != "":
            dotted = name[len(NESTED_PREFIX) :].lower().replace("__", ".")
            value: Any = raw
            if dotted.endswith(("allowed_roots", "extra_env")) or raw[:1] in "[{":
                try:
                    value = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{name} is not valid JSON: {exc}", key=dotted) from exc
            out[dotted] = (value, f"env:{name}")
    return out


def load_settings(env: Mapping[str, str] | None = None, config_path: Path | None = None) -> LoadedSettings:
    """Build the effective settings. Raises ``ConfigError`` naming the bad key and its source."""
    env = os.environ if env is None else env
    explicit = config_path is not None or bool(env.get(CONFIG_ENV))
    path = config_path or (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else default_config_path())
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if path.is_file():
        for dotted, value in _flatten(_read_file(path)).items():
            _set(tree, dotted, value)
            sources[dotted] = f"file:{path}"
    elif explicit:
        raise ConfigError(
            f"config file {path} does not exist", key="(file)", hint=f"Create it, or unset {CONFIG_ENV}."
        )
    for dotted, (value, source) in _env_values(env).items():
        _set(tree, dotted, value)
        sources[dotted] = source
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    return LoadedSettings(settings, sources, path if path.is_file() else None)


def _config_error(exc: ValidationError, sources: dict[str, str]) -> ConfigError:
    first = exc.errors()[0]
    # pydantic marks a bad dict key as loc (..., "name", "[key]"): report the key itself.
    dotted = ".".join(str(p) for p in first["loc"] if p != "[key]") or "(root)"
    source = sources.get(dotted) or next(
        (s for k, s in sources.items() if dotted.startswith(k) or k.startswith(dotted)), "default"
    )
    msg = first["msg"].removeprefix("Value error, ")
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return ConfigError(f"bad setting {dotted} from {source}: {msg}{extra}", key=dotted, source=source)


def effective_values(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """(dotted key, value as shown, source) for every setting; secrets are masked."""
    rows: list[tuple[str, str, str]] = []
    data = loaded.settings.model_dump()
    for dotted, value in sorted(_flatten(data).items()):
        shown = (
            "****"
            if isinstance(value, SecretStr) and value.get_secret_value()
            else ("" if value is None else str(value))
        )
        rows.append((dotted, shown, _source_of(dotted, loaded.sources)))
    for name, value in (
        ("socket_path", loaded.settings.socket_path),
        ("db_path", loaded.settings.db_path),
        ("log_dir", loaded.settings.log_dir),
    ):
        rows.append((f"(derived).{name}", str(value), "derived"))
    return rows


def _source_of(dotted: str, sources: dict[str, str]) -> str:
    if dotted in sources:
        return sources[dotted]
    parent = next((s for k, s in sources.items() if dotted.startswith(k + ".")), None)
    return parent or "default"
