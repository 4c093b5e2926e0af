"""The recommender: flags with reasons, the preference, the alternative, and "what would fit"."""

from __future__ import annotations

import pytest

from vllm_mcp.core.gpu_catalog import Device, GiB, parse_inventory
from vllm_mcp.core.model_catalog import reference_model
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.recommend import largest_fitting, recommend
from vllm_mcp.core.vram import estimate_memory
from vllm_mcp.errors import InvalidRequest


def ref(name: str) -> ModelDims:
    dims = reference_model(name)
    assert dims is not None
    return dims


def flags(rec: object) -> dict[str, str]:
    return {f.flag: f.value for f in rec.flags}  # type: ignore[attr-defined]


def test_an_8b_model_on_one_h100_runs_unsplit_at_full_precision() -> None:
    rec = recommend(ref("llama-3.1-8b"), parse_inventory("1xH100"), target_context=32_768, concurrency=8)
    assert rec.feasible
    f = flags(rec)
    assert f["--tensor-parallel-size"] == "1"
    assert f["--kv-cache-dtype"] == "auto" and f["--quantization"] == "(none)"
    assert f["--max-model-len"] == "32768" and f["--max-num-seqs"] == "8"
    assert all(choice.reason for choice in rec.flags)
    assert rec.best is not None and rec.best.estimate.kv.max_concurrency >= 8
    assert rec.alternative is not None and rec.alternative_why


def test_latency_prefers_more_tensor_parallel_ranks_throughput_fewer() -> None:
    devices = parse_inventory("4xH100")
    fast = recommend(ref("llama-3.1-8b"), devices, target_context=8192, preference="latency")
    wide = recommend(ref("llama-3.1-8b"), devices, target_context=8192, preference="throughput")
    assert flags(fast)["--tensor-parallel-size"] == "4"
    assert flags(wide)["--tensor-parallel-size"] == "1"  # 4 replicas hold more KV than one TP=4 engine
    assert int(flags(wide)["--max-num-seqs"]) > 1


def test_fp8_kv_is_chosen_only_when_the_target_needs_it() -> None:
    devices = parse_inventory("4xH100")
    rec = recommend(ref("llama-3.1-70b"), devices, target_context=32_768, concurrency=16)
    assert flags(rec)["--kv-cache-dtype"] == "fp8"
    assert "needs" in next(c.reason for c in rec.flags if c.flag == "--kv-cache-dtype")
    easy = recommend(ref("llama-3.1-70b"), devices, target_context=8192, concurrency=4)
    assert flags(easy)["--kv-cache-dtype"] == "auto"


def test_nothing_fits_gives_reasons_with_changes_that_would() -> None:
    rec = recommend(ref("llama-3.1-8b"), parse_inventory("1xRTX4090"), target_context=131_072, concurrency=4)
    assert not rec.feasible and rec.flags == ()
    text = "\n".join(rec.reasons)
    assert "closest" in text
    assert "a context of" in text and "would fit" in text
    ctx = int(text.split("a context of ")[1].split(" ")[0].replace(",", ""))
    again = recommend(ref("llama-3.1-8b"), parse_inventory("1xRTX4090"), target_context=ctx, concurrency=4)
    assert again.feasible


def test_cpu_host_gets_an_exact_kv_size() -> None:
    host = Device(0, "host CPU", 24 * GiB, 20 * GiB, platform="cpu", source="host")
    tiny = ModelDims("tiny", 2, 128, 4, 2, 32, 2048, 557_696, dtype="float32", max_position_embeddings=2048)
    rec = recommend(tiny, [host], target_context=2048, concurrency=4)
    f = flags(rec)
    assert "--gpu-memory-utilization" not in f
    kv = int(f["--kv-cache-memory-bytes"])
    assert kv == 4 * 2048 * 512  # bf16: 512 B per token, whole 128-token blocks
    assert f["--kv-cache-dtype"] == "auto"


def test_recommended_flags_fit_when_estimated_again() -> None:
    rec = recommend(
        ref("qwen2.5-coder-32b-instruct"), parse_inventory("2xL40S"), target_context=16_384, concurrency=4
    )
    assert rec.best is not None
    est = estimate_memory(
        rec.best.model if hasattr(rec.best, "model") else ref("qwen2.5-coder-32b-instruct"),
        rec.best.config,
        parse_inventory("L40S")[0],
        target_concurrency=4,
    )
    assert est.fits


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(InvalidRequest, match="concurrency"):
        recommend(ref("llama-3.1-8b"), parse_inventory("H100"), concurrency=0)
    with pytest.raises(InvalidRequest, match="preference"):
        recommend(ref("llama-3.1-8b"), parse_inventory("H100"), preference="cheap")  # type: ignore[arg-type]


def test_largest_fitting_bisects_a_monotone_predicate() -> None:
    assert largest_fitting(lambda x: x <= 777, 1, 10_000) == 777
    assert largest_fitting(lambda x: False, 1, 10) is None
