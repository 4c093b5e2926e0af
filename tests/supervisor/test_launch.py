"""What a vLLM child gets: argv, a clean environment, and refused model sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.supervisor.conftest import fake_model, make_settings
from vllm_mcp.config.settings import EngineSettings, ModelsSettings, PathsSettings, Settings
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.errors import ConfigError, InvalidRequest, NotFound
from vllm_mcp.supervisor.launch import (
    build_argv,
    check_lora_path,
    check_model_source,
    child_env,
    detect_platform,
    resolve_vllm_bin,
)

MANAGER_ENV = {
    "PATH": "/usr/bin",
    "HOME": "/home/u",
    "LANG": "C.UTF-8",
    "HF_HOME": "/hf",
    "VLLM_PORT": "8000",
    "VLLM_HOST": "0.0.0.0",
    "VLLM_API_KEY": "secret-of-the-manager",
    "VLLM_API_ENDPOINT": "http://elsewhere:8000",
    "VLLM_GPU_MEMORY_UTILIZATION": "0.5",
    "VLLM_TENSOR_PARALLEL_SIZE": "4",
    "VLLM_MODEL_CACHE_DIR": "/cache",
    "VLLM_MCP__ENGINE__VLLM_BIN": "/x/vllm",
    "ENCRYPTION_KEY": "k",
    "STATE_DB_PATH": "/db",
    "AWS_SECRET_ACCESS_KEY": "nope",
    "CUDA_VISIBLE_DEVICES": "0,1",
}


def test_child_env_never_carries_the_managers_variables(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = child_env(settings, EngineSpec("org/m"), MANAGER_ENV)
    kept = {"PATH", "HOME", "LANG", "HF_HOME", "CUDA_VISIBLE_DEVICES"}
    for leaked in set(MANAGER_ENV) - kept:
        assert leaked not in env, leaked
    assert env["PATH"] == "/usr/bin"
    assert env["HF_HOME"] == "/hf"
    assert env["VLLM_SERVER_DEV_MODE"] == "1"
    assert env["VLLM_HOST_IP"] == "127.0.0.1"
    assert env["VLLM_NO_USAGE_STATS"] == "1"
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1"  # no GPUs assigned: the daemon's view is kept


def test_child_env_sets_what_the_spec_and_settings_ask_for(tmp_path: Path) -> None:
    settings = Settings(
        paths=PathsSettings(state_dir=tmp_path),
        engine=EngineSettings(
            hf_hub_offline=True, host="127.0.0.2", extra_env={"VLLM_CPU_KVCACHE_SPACE": "1"}
        ),
        models=ModelsSettings(cache_dir=tmp_path / "hub"),
    )
    spec = EngineSpec("org/m", enable_lora=True, gpus=(2, 3), tensor_parallel_size=2)
    env = child_env(settings, spec, MANAGER_ENV)
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_HUB_CACHE"] == str(tmp_path / "hub")
    assert env["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert env["VLLM_HOST_IP"] == "127.0.0.2"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_argv_is_a_list_with_host_port_and_sleep_mode_only_on_cuda() -> None:
    spec = EngineSpec("/m/tiny", served_name="tiny", enforce_eager=True)
    cpu = build_argv("/bin/vllm", spec, host="127.0.0.1", port=8201, platform="cpu")
    assert cpu == ["/bin/vllm", "serve", "/m/tiny", "--served-model-name", "tiny", "--enforce-eager",
                   "--host", "127.0.0.1", "--port", "8201"]  # fmt: skip
    cuda = build_argv("/bin/vllm", spec, host="127.0.0.1", port=8201, platform="cuda")
    assert cuda[-1] == "--enable-sleep-mode"


def test_platform_setting_wins_over_detection(tmp_path: Path) -> None:
    assert detect_platform(make_settings(tmp_path, platform="cuda")) == "cuda"
    assert detect_platform(make_settings(tmp_path, platform="cpu")) == "cpu"
    detected = detect_platform(make_settings(tmp_path, platform="auto"))
    assert detected == ("cuda" if Path("/dev/nvidiactl").exists() else "cpu")


def test_missing_vllm_binary_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_vllm_bin(make_settings(tmp_path, vllm_bin=str(tmp_path / "no-vllm")))
    assert err.value.key == "engine.vllm_bin"


def test_local_model_must_be_under_an_allowed_root(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    inside = fake_model(tmp_path)
    check_model_source(settings, EngineSpec(str(inside)))
    outside = tmp_path / "elsewhere" / "m"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text("{}")
    with pytest.raises(InvalidRequest, match="outside the allowed model roots") as err:
        check_model_source(settings, EngineSpec(str(outside)))
    assert err.value.context["field"] == "model"
    sneaky = tmp_path / "models" / ".." / "elsewhere" / "m"
    with pytest.raises(InvalidRequest):
        check_model_source(settings, EngineSpec(str(sneaky)))
    link = tmp_path / "models" / "link"
    link.symlink_to(outside)
    with pytest.raises(InvalidRequest):  # symlinks are resolved before the check
        check_model_source(settings, EngineSpec(str(link)))


def test_unknown_local_model_is_not_found(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    (tmp_path / "models" / "empty").mkdir(parents=True)
    with pytest.raises(NotFound, match=r"no config\.json"):
        check_model_source(settings, EngineSpec(str(tmp_path / "models" / "empty")))


def test_hf_id_must_be_cached_when_the_hub_is_offline(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    settings = Settings(
        paths=PathsSettings(state_dir=tmp_path),
        engine=EngineSettings(hf_hub_offline=True),
        models=ModelsSettings(cache_dir=cache),
    )
    with pytest.raises(NotFound, match="not in the local Hugging Face cache"):
        check_model_source(settings, EngineSpec("org/never-downloaded"))
    (cache / "models--org--cached" / "snapshots").mkdir(parents=True)
    check_model_source(settings, EngineSpec("org/cached"))
    online = make_settings(tmp_path)
    check_model_source(online, EngineSpec("org/never-downloaded"))  # vLLM may download it


def test_lora_path_rules(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    adapter = tmp_path / "models" / "lora"
    adapter.mkdir(parents=True)
    with pytest.raises(NotFound, match=r"adapter_config\.json"):
        check_lora_path(settings, str(adapter))
    (adapter / "adapter_config.json").write_text("{}")
    assert check_lora_path(settings, str(adapter)) == str(adapter.resolve())
    with pytest.raises(InvalidRequest, match="not a local path"):
        check_lora_path(settings, "org/lora")
    with pytest.raises(InvalidRequest, match="outside"):
        check_lora_path(settings, str(tmp_path))
