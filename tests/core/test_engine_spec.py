"""EngineSpec: every bad field is refused naming the field; extra flags only from the allowlist."""

from __future__ import annotations

from typing import Any

import pytest

from vllm_mcp.core.engine_spec import ALLOWLIST, EngineSpec, default_served_name, normalize_flags
from vllm_mcp.errors import InvalidRequest


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"pipeline_parallel_size": 65}, "pipeline_parallel_size"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
        ({"gpu_memory_utilization": 0.0}, "gpu_memory_utilization"),
        ({"gpu_memory_utilization": 0.5, "kv_cache_memory_bytes": 1024}, "kv_cache_memory_bytes"),
        ({"kv_cache_memory_bytes": 0}, "kv_cache_memory_bytes"),
        ({"max_model_len": 0}, "max_model_len"),
        ({"dtype": "float128"}, "dtype"),
        ({"quantization": "AWQ; rm -rf"}, "quantization"),
        ({"kv_cache_dtype": "int3"}, "kv_cache_dtype"),
        ({"max_loras": 2}, "max_loras"),
        ({"enable_lora": True, "max_lora_rank": 0}, "max_lora_rank"),
        ({"gpus": (0, 0)}, "gpus"),
        ({"gpus": (-1,)}, "gpus"),
        ({"gpus": (0, 1), "tensor_parallel_size": 1}, "gpus"),
        ({"port": 80}, "port"),
        ({"served_name": "has space"}, "served_name"),
        ({"served_name": "-flag"}, "served_name"),
        ({"extra_flags": ("--trust-remote-code",)}, "extra_flags"),
        ({"extra_flags": ("--max-num-seqs",)}, "extra_flags"),
        ({"extra_flags": ("--max-num-seqs", "--seed")}, "extra_flags"),
        ({"extra_flags": ("--max-num-seqs", "zero")}, "extra_flags"),
        ({"extra_flags": ("--seed=1", "--seed=2")}, "extra_flags"),
        ({"extra_flags": ("--enable-prefix-caching", "--no-enable-prefix-caching")}, "extra_flags"),
        ({"extra_flags": ("--enable-auto-tool-choice=yes",)}, "extra_flags"),
        ({"extra_flags": ("8",)}, "extra_flags"),
        ({"extra_flags": ("--tool-call-parser", "Hermes Evil")}, "extra_flags"),
    ],
)
def test_bad_field_is_refused_naming_it(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        EngineSpec("org/model", **fields)
    assert err.value.context["field"] == field
    assert err.value.hint


@pytest.mark.parametrize("model", ["", "not a model", "https://evil/x", "a/b/c", "-rf", "org/"])
def test_model_must_be_hf_id_or_path(model: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        EngineSpec(model)
    assert err.value.context["field"] == "model"


@pytest.mark.parametrize("model", ["Qwen/Qwen2.5-0.5B-Instruct", "/models/tiny", "./tiny", "~/m/x"])
def test_valid_sources_are_accepted(model: str) -> None:
    assert EngineSpec(model).model == model


def test_flags_are_normalized_to_argv_tokens() -> None:
    spec = EngineSpec("org/m", extra_flags=("--seed=3", "--max-num-seqs", "8", "--enable-prefix-caching"))
    assert spec.extra_flags == ("--seed", "3", "--max-num-seqs", "8", "--enable-prefix-caching")
    assert normalize_flags(list(spec.extra_flags)) == spec.extra_flags


def test_every_allowlisted_flag_is_accepted_with_a_sane_value() -> None:
    samples = {"--chat-template": "/t/chat.jinja", "--generation-config": "vllm", "--swap-space": "4"}
    for flag, check in ALLOWLIST.items():
        tokens = (
            (flag,) if check is None else (flag, samples.get(flag, "hermes" if "parser" in flag else "4"))
        )
        assert normalize_flags(tokens) == tokens


def test_engine_args_carry_every_set_field_and_nothing_else() -> None:
    spec = EngineSpec(
        "/m/tiny",
        served_name="tiny",
        tensor_parallel_size=2,
        kv_cache_memory_bytes=64,
        max_model_len=512,
        dtype="bfloat16",
        kv_cache_dtype="fp8",
        enforce_eager=True,
        enable_lora=True,
        max_loras=2,
        max_lora_rank=8,
        extra_flags=("--seed", "1"),
    )
    assert spec.engine_args() == [
        "/m/tiny", "--served-model-name", "tiny", "--tensor-parallel-size", "2",
        "--kv-cache-memory-bytes", "64", "--max-model-len", "512", "--dtype", "bfloat16",
        "--kv-cache-dtype", "fp8", "--max-loras", "2", "--max-lora-rank", "8", "--enforce-eager",
        "--enable-lora", "--seed", "1",
    ]  # fmt: skip
    assert EngineSpec("org/m").engine_args() == ["org/m", "--served-model-name", "m"]


def test_identity_ignores_placement_only() -> None:
    base = EngineSpec("org/m", served_name="m")
    assert base.identity() == EngineSpec("org/m", served_name="m", port=9000).identity()
    assert base.identity() != EngineSpec("org/m", served_name="m", max_model_len=1024).identity()
    assert base.identity() != EngineSpec("org/other", served_name="m").identity()


def test_dict_round_trip_and_unknown_keys() -> None:
    spec = EngineSpec("org/m", gpus=(0, 1), tensor_parallel_size=2, extra_flags=("--seed", "2"))
    assert EngineSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(InvalidRequest, match="bogus"):
        EngineSpec.from_dict({"model": "org/m", "bogus": 1})


@pytest.mark.parametrize(
    ("model", "name"),
    [("Qwen/Qwen2.5-7B", "Qwen2.5-7B"), ("/m/tiny-llama/", "tiny-llama"), ("/x/a b", "a-b")],
)
def test_default_served_name_is_last_segment(model: str, name: str) -> None:
    assert default_served_name(model) == name
