"""The one settings tree. Plain pydantic models; ``loader`` fills them from defaults, the config
file and the environment, and remembers where each value came from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

APP = "vllm-mcp"


def default_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(gt=0.0, le=1.0)]
Port = Annotated[int, Field(ge=1, le=65535)]


class PathsSettings(_Section):
    state_dir: Path = Field(
        default_factory=default_state_dir, description="Where the database, socket, logs and pid file live."
    )


class DaemonSettings(_Section):
    socket_path: Path | None = Field(
        None, description="Control API socket; <state_dir>/daemon.sock when unset."
    )
    tcp_host: str | None = Field(None, description="Also serve the control API on TCP here (needs token).")
    tcp_port: Port | None = None
    token: SecretStr | None = Field(None, description="Bearer token required on the TCP control API.")
    start_timeout_s: float = Field(
        20.0, gt=0, description="How long a client waits for an auto-started daemon."
    )

    @model_validator(mode="after")
    def _tcp_needs_token(self) -> DaemonSettings:
        if (self.tcp_host or self.tcp_port) and self.token is None:
            raise ValueError(
                "a TCP control API requires daemon.token (any TCP control surface needs a token)"
            )
        if (self.tcp_host is None) != (self.tcp_port is None):
            raise ValueError("set both daemon.tcp_host and daemon.tcp_port, or neither")
        return self


class GatewaySettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Port = 8100


class EngineSettings(_Section):
    """How vLLM processes are launched (the local launcher)."""

    vllm_bin: str = Field("vllm", description="The vllm executable: a name on PATH or a path.")
    host: str = Field("127.0.0.1", description="Address vLLM instances bind to.")
    port_range_start: Port = 8200
    port_range_end: Port = 8299
    start_timeout_s: float = Field(900.0, gt=0, description="Give up on a start after this long.")
    stop_timeout_s: float = Field(15.0, gt=0, description="SIGTERM → this long → SIGKILL.")
    warmup: bool = Field(True, description="Send a 1-token request before declaring ready.")
    extra_env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment for every vLLM child."
    )
    platform: Literal["auto", "cuda", "cpu"] = Field(
        "auto",
        description="cuda adds --enable-sleep-mode (rejected by the CPU build); auto: cuda iff an "
        "NVIDIA device is visible.",
    )
    hf_hub_offline: bool = Field(
        False, description="Children run with HF_HUB_OFFLINE=1; HF ids must already be in the cache."
    )
    restart_on_crash: bool = Field(False, description="Restart an instance whose engine died by itself.")
    restart_backoff_s: float = Field(
        2.0, gt=0, description="First delay before a crash restart; doubles per attempt."
    )
    restart_backoff_max_s: float = Field(60.0, gt=0, description="Longest delay between crash restarts.")
    restart_max_attempts: int = Field(
        5, ge=1, description="Crash restarts in a row before the instance stays failed."
    )

    @model_validator(mode="after")
    def _range_ordered(self) -> EngineSettings:
        if self.port_range_end < self.port_range_start:
            raise ValueError("engine.port_range_end must be ≥ engine.port_range_start")
        return self


class EngineDefaults(_Section):
    """Defaults for load-model; the seed's VLLM_* variables land here."""

    gpu_memory_utilization: Fraction = 0.9
    tensor_parallel_size: int = Field(1, ge=1, le=64)
    quantization: str | None = None
    kv_cache_memory_bytes: int | None = Field(None, gt=0)
    max_model_len: int | None = Field(None, gt=0)
    enforce_eager: bool = False


class ModelsSettings(_Section):
    cache_dir: Path | None = Field(
        None, description="Hugging Face cache to load from and scan (VLLM_MODEL_CACHE_DIR)."
    )
    allowed_roots: list[Path] = Field(
        default_factory=list, description="Local model paths must lie under one of these (plus cache_dir)."
    )


class ExternalSettings(_Section):
    """A vLLM server this daemon did not start (never killed)."""

    endpoint: AnyHttpUrl | None = Field(None, description="Base URL of an external vLLM (VLLM_API_ENDPOINT).")
    api_key: SecretStr | None = Field(
        None, description="Bearer key for external vLLM servers (VLLM_API_KEY)."
    )
    host: str | None = Field(None, description="Host of a vLLM to probe (VLLM_HOST).")
    port: Port | None = Field(None, description="Port of a vLLM to probe (VLLM_PORT).")
    allow_sleep: bool = Field(
        False, description="Let agents sleep/wake the external vLLM (it must run with dev mode on)."
    )


AlertKey = Literal[
    "kv_cache_usage",
    "gpu_memory",
    "gpu_utilization",
    "waiting_requests",
    "ttft_p95_ms",
    "e2e_p95_ms",
    "error_rate",
]


def _default_alerts() -> dict[AlertKey, float]:
    return {"kv_cache_usage": 0.9, "gpu_memory": 0.95, "waiting_requests": 8.0}


class MonitorSettings(_Section):
    interval_ms: int = Field(5000, ge=100, le=3_600_000, description="Scrape interval (MONITOR_INTERVAL_MS).")
    retention_hours: float = Field(
        24.0, gt=0, description="Keep samples this long (METRICS_RETENTION_HOURS)."
    )
    alert_thresholds: dict[AlertKey, Annotated[float, Field(ge=0)]] = Field(
        default_factory=_default_alerts, description="ALERT_THRESHOLD_<NAME>; fractions are 0–1."
    )


class StoreSettings(_Section):
    db_path: Path | None = Field(
        None, description="SQLite file; <state_dir>/state.db when unset (STATE_DB_PATH)."
    )
    encryption_key: SecretStr | None = Field(
        None, description="Encrypt snapshots with AES-GCM (ENCRYPTION_KEY)."
    )
    compression: bool = Field(True, description="zstd-compress snapshots (ENABLE_COMPRESSION).")


PROBE_TARGET_RE = re.compile(
    r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<lo>\d{1,5})(?:-(?P<hi>\d{1,5}))?$"
)
MAX_PROBE_PORTS = 4096


class DiscoverySettings(_Section):
    """Where discovery looks for models on disk and for running vLLM servers."""

    hf_cache_dir: Path | None = Field(
        None,
        description="Hugging Face hub cache to scan; default HF_HUB_CACHE, else $HF_HOME/hub, else "
        "~/.cache/huggingface/hub (models.cache_dir is scanned as well when set).",
    )
    extra_roots: list[Path] = Field(
        default_factory=list,
        description="Folders holding plain model folders, GGUF files and LoRA adapters (searched "
        "scan_depth levels deep).",
    )
    scan_depth: int = Field(3, ge=1, le=8, description="How deep to look under each extra root.")
    rescan_interval_s: float = Field(
        10.0, ge=0, description="A listing older than this triggers an incremental rescan (stat only)."
    )
    probe_targets: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:8000"],
        description="host:port or host:first-last port ranges probed for running vLLM servers, "
        "besides VLLM_API_ENDPOINT and VLLM_HOST/VLLM_PORT.",
    )
    probe_engine_range: bool = Field(
        True, description="Also probe engine.host over engine.port_range_start..port_range_end."
    )
    probe_timeout_s: float = Field(0.5, gt=0, le=30, description="Per-request timeout of a probe.")
    probe_concurrency: int = Field(64, ge=1, le=1024, description="Probes in flight at once.")
    hub_enrichment: bool = Field(
        True, description="Fetch license, downloads, pipeline tag and gated flag from the hub (online only)."
    )
    hub_endpoint: str | None = Field(
        None, description="Hub API base URL; default HF_ENDPOINT, else https://huggingface.co."
    )
    hub_timeout_s: float = Field(5.0, gt=0, le=60, description="Timeout of one hub request.")
    hub_cache_hours: float = Field(24.0, ge=0, description="Reuse hub answers cached in SQLite this long.")
    registry_timeout_s: float = Field(
        180.0, gt=0, description="Limit for asking the installed vLLM for its model registry."
    )

    @field_validator("probe_targets")
    @classmethod
    def _targets_parse(cls, targets: list[str]) -> list[str]:
        total = 0
        for target in targets:
            m = PROBE_TARGET_RE.match(target)
            if m is None:
                raise ValueError(f"probe target {target!r} is not host:port or host:first-last")
            lo, hi = int(m["lo"]), int(m["hi"] or m["lo"])
            if not 1 <= lo <= hi <= 65535:
                raise ValueError(f"probe target {target!r}: ports must be 1-65535, first ≤ last")
            total += hi - lo + 1
        if total > MAX_PROBE_PORTS:
            raise ValueError(f"probe targets cover {total} ports; at most {MAX_PROBE_PORTS}")
        return targets


class OptimizerSettings(_Section):
    """Memory planning: which GPUs to plan for, how much slack to keep, and calibration."""

    gpus: str | None = Field(
        None,
        description="Planning inventory, e.g. '2xH100-80GB' or '1xRTX4090, 1xL4': used when NVML "
        "finds no GPU, or always with prefer_declared (VLLM_MCP__OPTIMIZER__GPUS).",
    )
    prefer_declared: bool = Field(
        False, description="Plan for the declared gpus even when NVML sees real ones."
    )
    safety_margin_gib: float = Field(
        1.0, ge=0, le=64, description="Keep this much of each device free beyond the estimate."
    )
    check_before_load: bool = Field(
        True, description="load-model refuses a config the estimator says cannot fit (unless forced)."
    )
    calibrate: bool = Field(
        True, description="Record what vLLM reports after every start; correct later estimates."
    )
    calibration_window: int = Field(
        5, ge=1, le=100, description="Latest starts (per model and vLLM version) a correction uses."
    )

    @field_validator("gpus")
    @classmethod
    def _gpus_parse(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            from vllm_mcp.core.gpu_catalog import parse_inventory
            from vllm_mcp.errors import InvalidRequest

            try:
                parse_inventory(value)
            except InvalidRequest as exc:
                raise ValueError(exc.describe()) from None
        return value or None


class Settings(_Section):
    paths: PathsSettings = Field(default_factory=PathsSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    engine_defaults: EngineDefaults = Field(default_factory=EngineDefaults)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    external: ExternalSettings = Field(default_factory=ExternalSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)

    # Derived paths: one place that knows the layout of the state dir.
    @property
    def socket_path(self) -> Path:
        return self.daemon.socket_path or self.paths.state_dir / "daemon.sock"

    @property
    def db_path(self) -> Path:
        return self.store.db_path or self.paths.state_dir / "state.db"

    @property
    def log_dir(self) -> Path:
        return self.paths.state_dir / "logs"

    @property
    def pid_path(self) -> Path:
        return self.paths.state_dir / "daemon.pid"

    @property
    def lock_path(self) -> Path:
        return self.paths.state_dir / "daemon.lock"
