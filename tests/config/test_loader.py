from __future__ import annotations

from pathlib import Path

import pytest

from vllm_mcp.config import SEED_ENV, effective_values, load_settings
from vllm_mcp.errors import ConfigError


def test_defaults_without_file_or_env(tmp_path: Path) -> None:
    loaded = load_settings(env={}, config_path=None)
    s = loaded.settings
    assert s.engine.host == "127.0.0.1"
    assert s.gateway.port == 8100
    assert s.engine.port_range_start == 8200
    assert s.socket_path == s.paths.state_dir / "daemon.sock"
    assert all(src in ("default", "derived") for _, _, src in effective_values(loaded))


def test_seed_environment_variables_map_onto_the_tree() -> None:
    env = {
        "VLLM_API_ENDPOINT": "http://127.0.0.1:9000",
        "VLLM_API_KEY": "sekret",
        "VLLM_HOST": "127.0.0.1",
        "VLLM_PORT": "9001",
        "VLLM_MODEL_CACHE_DIR": "/models",
        "VLLM_GPU_MEMORY_UTILIZATION": "0.5",
        "VLLM_TENSOR_PARALLEL_SIZE": "2",
        "VLLM_QUANTIZATION": "awq",
        "MONITOR_INTERVAL_MS": "250",
        "ALERT_THRESHOLD_KV_CACHE_USAGE": "0.8",
        "METRICS_RETENTION_HOURS": "6",
        "STATE_DB_PATH": "/tmp/x.db",
        "ENCRYPTION_KEY": "k" * 32,
        "ENABLE_COMPRESSION": "false",
    }
    loaded = load_settings(env=env)
    s = loaded.settings
    assert str(s.external.endpoint) == "http://127.0.0.1:9000/"
    assert s.external.api_key is not None and s.external.api_key.get_secret_value() == "sekret"
    assert s.external.port == 9001
    assert s.models.cache_dir == Path("/models")
    assert s.engine_defaults.gpu_memory_utilization == 0.5
    assert s.engine_defaults.tensor_parallel_size == 2
    assert s.engine_defaults.quantization == "awq"
    assert s.monitor.interval_ms == 250
    assert s.monitor.alert_thresholds["kv_cache_usage"] == 0.8
    assert s.monitor.retention_hours == 6
    assert s.db_path == Path("/tmp/x.db")
    assert s.store.compression is False
    rows = {k: (v, src) for k, v, src in effective_values(loaded)}
    assert rows["engine_defaults.tensor_parallel_size"] == ("2", "env:VLLM_TENSOR_PARALLEL_SIZE")
    assert rows["store.encryption_key"] == ("****", "env:ENCRYPTION_KEY")
    assert rows["external.api_key"][0] == "****"
    # every seed variable is honoured
    assert {src.removeprefix("env:") for _, src in rows.values() if src.startswith("env:")} >= set(SEED_ENV)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"VLLM_GPU_MEMORY_UTILIZATION": "1.5"}, "engine_defaults.gpu_memory_utilization"),
        ({"VLLM_TENSOR_PARALLEL_SIZE": "zero"}, "engine_defaults.tensor_parallel_size"),
        ({"VLLM_PORT": "70000"}, "external.port"),
        ({"MONITOR_INTERVAL_MS": "5"}, "monitor.interval_ms"),
        ({"ALERT_THRESHOLD_BOGUS": "1"}, "monitor.alert_thresholds.bogus"),
        ({"VLLM_MCP__ENGINE__NOPE": "1"}, "engine.nope"),
        ({"VLLM_MCP__DAEMON__TCP_PORT": "9999", "VLLM_MCP__DAEMON__TCP_HOST": "127.0.0.1"}, "daemon"),
    ],
)
def test_bad_values_name_the_key_and_the_source(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert info.value.key == key
    assert key in info.value.message


def test_file_values_are_overridden_by_env_and_sources_say_so(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[engine]\nvllm_bin = "/opt/vllm/bin/vllm"\nport_range_start = 9000\n'
        "port_range_end = 9010\n[gateway]\nport = 8200\n"
    )
    loaded = load_settings(env={"VLLM_MCP__GATEWAY__PORT": "8300"}, config_path=cfg)
    s = loaded.settings
    assert s.engine.vllm_bin == "/opt/vllm/bin/vllm"
    assert s.gateway.port == 8300
    rows = {k: src for k, _, src in effective_values(loaded)}
    assert rows["engine.vllm_bin"] == f"file:{cfg}"
    assert rows["gateway.port"] == "env:VLLM_MCP__GATEWAY__PORT"
    assert rows["gateway.host"] == "default"


def test_bad_toml_and_missing_explicit_file_are_clear_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[engine\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(env={}, config_path=cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"VLLM_MCP_CONFIG": str(tmp_path / "missing.toml")})


def test_example_config_validates() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "config.example.toml"
    loaded = load_settings(env={}, config_path=example)
    assert loaded.settings.engine.host == "127.0.0.1"
