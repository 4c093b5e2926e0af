"""The estimator against published figures of real models and vLLM's own KV arithmetic."""

from __future__ import annotations

import pytest

from vllm_mcp.core.engine_config import EngineConfig
from vllm_mcp.core.gpu_catalog import Device, GiB, MiB, parse_inventory
from vllm_mcp.core.kv_cache import KvLayout, kv_capacity, pool_bytes_for_tokens
from vllm_mcp.core.model_catalog import reference_model
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.vram import Correction, estimate_memory, kv_layout, model_kv_bytes_per_token
from vllm_mcp.core.vram_rules import valid_tensor_parallel_sizes
from vllm_mcp.errors import InvalidRequest

H100 = parse_inventory("1xH100-80GB")[0]
CPU = Device(0, "host", 24 * GiB, 20 * GiB, platform="cpu", source="host")


def ref(name: str) -> ModelDims:
    dims = reference_model(name)
    assert dims is not None
    return dims


def tiny(**kw: object) -> ModelDims:
    base: dict[str, object] = dict(
        name="tiny",
        num_layers=2,
        hidden_size=128,
        num_attention_heads=4,
        num_kv_heads=2,
        head_dim=32,
        vocab_size=2048,
        param_count=566_400,
        dtype="float32",
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    )
    base.update(kw)
    return ModelDims(**base)  # type: ignore[arg-type]


# --- published KV figures ---------------------------------------------------------------------


def test_llama_3_1_8b_bf16_kv_is_131072_bytes_per_token() -> None:
    est = estimate_memory(ref("llama-3.1-8b"), EngineConfig(max_model_len=8192), H100)
    assert est.model_kv_bytes_per_token == 131_072
    assert est.kv_bytes_per_token == 131_072


def test_llama_3_1_70b_kv_is_327680_per_token_and_81920_per_gpu_at_tp4() -> None:
    dims = ref("meta-llama/Llama-3.1-70B")
    est = estimate_memory(dims, EngineConfig(tensor_parallel_size=4, max_model_len=8192), H100)
    assert est.model_kv_bytes_per_token == 327_680
    assert est.kv_bytes_per_token == 81_920


def test_deepseek_v3_mla_kv_is_70272_bytes_per_token_in_bf16() -> None:
    dims = ref("deepseek-v3")
    assert model_kv_bytes_per_token(dims, 2) == 61 * (512 + 64) * 2 == 70_272
    est = estimate_memory(dims, EngineConfig(tensor_parallel_size=8, max_model_len=8192), H100)
    # MLA's latent is not split over TP ranks: every GPU keeps the whole 70,272 B per token.
    assert est.kv_bytes_per_token == 70_272


def test_fp8_kv_cache_halves_bytes_per_token() -> None:
    est = estimate_memory(ref("llama-3.1-8b"), EngineConfig(kv_cache_dtype="fp8", max_model_len=8192), H100)
    assert est.kv_bytes_per_token == 65_536


# --- weights from parameter counts ------------------------------------------------------------


def test_weights_follow_parameter_counts_and_split_over_tp() -> None:
    est8 = estimate_memory(ref("llama-3.1-8b"), EngineConfig(max_model_len=4096), H100)
    assert est8.weights_bytes == 8_030_261_248 * 2
    est70 = estimate_memory(
        ref("llama-3.1-70b"), EngineConfig(tensor_parallel_size=4, max_model_len=4096), H100
    )
    assert est70.weights_bytes == 70_553_706_496 * 2 // 4
    ds = estimate_memory(ref("deepseek-v3"), EngineConfig(tensor_parallel_size=8, max_model_len=4096), H100)
    assert ds.weights_bytes == 671_000_000_000 // 8  # FP8 checkpoint: one byte per parameter


def test_online_fp8_quantization_stores_linear_layers_in_one_byte() -> None:
    dims = ref("llama-3.1-8b")
    est = estimate_memory(dims, EngineConfig(quantization="fp8", max_model_len=4096), H100)
    embed = 2 * 128_256 * 4096
    assert est.weights_bytes == embed * 2 + (8_030_261_248 - embed)


def test_pipeline_parallel_puts_a_share_of_layers_plus_one_vocab_table_per_gpu() -> None:
    dims = ref("llama-3.1-70b")
    est = estimate_memory(dims, EngineConfig(pipeline_parallel_size=2, max_model_len=4096), H100)
    table = 128_256 * 8192 * 2
    layers = 70_553_706_496 * 2 - 2 * table
    assert est.weights_bytes == layers // 2 + table
    assert est.kv_bytes_per_token == 327_680 // 2


def test_float32_checkpoint_runs_as_bfloat16_under_auto() -> None:
    est = estimate_memory(tiny(), EngineConfig(kv_cache_memory_bytes=64 * MiB), CPU)
    assert est.config.dtype == "bfloat16"
    assert est.kv_bytes_per_token == 512
    assert any("runs as bfloat16" in n for n in est.notes)


# --- vLLM's KV capacity arithmetic ------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "max_len", "kv_bytes", "tokens", "concurrency"),
    [
        ("auto", 2048, 64 * MiB, 131_072, 64.0),  # measured: real vLLM 0.32 on the test bed
        ("float32", 2000, 64 * MiB, 64_000, 32.0),  # measured: 512 blocks / 16 per request × 2000
        ("float32", 2048, 64 * MiB, 65_536, 32.0),
    ],
)
def test_tiny_model_capacity_matches_what_vllm_logged(
    dtype: str, max_len: int, kv_bytes: int, tokens: int, concurrency: float
) -> None:
    cfg = EngineConfig(dtype=dtype, max_model_len=max_len, kv_cache_memory_bytes=kv_bytes)
    est = estimate_memory(tiny(), cfg, CPU)
    assert est.config.block_size == 128
    assert (est.kv.tokens, est.kv.max_concurrency) == (tokens, concurrency)


def test_sliding_window_layers_need_only_the_window_per_request() -> None:
    dims = ref("gemma-2-9b-it")
    cfg = EngineConfig(max_model_len=8192, kv_cache_memory_bytes=8 * GiB, max_num_batched_tokens=2048)
    est = estimate_memory(dims, cfg, H100)
    layout = kv_layout(dims, est.config)
    assert (layout.full_layers, layout.sliding_layers) == (21, 21)
    assert layout.groups() == (21, 1, 1)
    # full group: 8192/16 blocks; sliding group: cdiv(min(4095 + 2×2048, 8192), 16) + 1
    assert layout.blocks_per_request(8192, 4096) == 512 + 512 + 1
    full_only = KvLayout(layout.page_bytes_per_token, 42, 0, None, 16)
    plain = kv_capacity(full_only, 8 * GiB, 8192, 4096)
    assert est.kv.num_blocks == 2 * plain.num_blocks  # the pool holds blocks of 21 layers, not 42


def test_sliding_window_shorter_than_context_raises_concurrency() -> None:
    layout = KvLayout(
        page_bytes_per_token=1024, full_layers=1, sliding_layers=5, sliding_window=512, block_size=16
    )
    assert layout.groups() == (1, 1, 5)
    cap = kv_capacity(layout, 1000 * 16 * 1024, 32_768, 2048)
    assert cap.blocks_per_request == 2048 + 5 * (cdiv_(511 + 2048, 16) + 1)
    assert cap.tokens == int(1000 / cap.blocks_per_request * 32_768)


def cdiv_(a: int, b: int) -> int:
    return -(-a // b)


def test_pool_for_tokens_is_the_smallest_whole_block_pool_reaching_the_target() -> None:
    layout = KvLayout(
        page_bytes_per_token=512, full_layers=2, sliding_layers=0, sliding_window=None, block_size=128
    )
    pool = pool_bytes_for_tokens(layout, 10_000, 2048, 4096)
    assert kv_capacity(layout, pool, 2048, 4096).tokens >= 10_000
    assert kv_capacity(layout, pool - layout.bytes_per_block, 2048, 4096).tokens < 10_000


# --- fit ----------------------------------------------------------------------------------------


def test_70b_does_not_fit_one_h100_and_says_why() -> None:
    est = estimate_memory(ref("llama-3.1-70b"), EngineConfig(max_model_len=8192), H100)
    assert not est.fits
    assert est.margin_bytes < 0
    assert "KV cache" in est.problems[0].message
    assert est.problems[0].hint


def test_70b_fits_four_h100_with_room_for_many_requests() -> None:
    est = estimate_memory(
        ref("llama-3.1-70b"), EngineConfig(tensor_parallel_size=4, max_model_len=8192), H100
    )
    assert est.fits and est.margin_bytes > 0
    assert est.kv.max_concurrency > 50


def test_a_fixed_pool_larger_than_the_device_does_not_fit() -> None:
    est = estimate_memory(tiny(), EngineConfig(kv_cache_memory_bytes=100 * GiB), CPU)
    assert not est.fits
    assert any("more than" in p.message for p in est.problems)


def test_target_concurrency_beyond_the_pool_does_not_fit() -> None:
    cfg = EngineConfig(max_model_len=2048, kv_cache_memory_bytes=64 * MiB)
    assert estimate_memory(tiny(), cfg, CPU, target_concurrency=64).fits
    est = estimate_memory(tiny(), cfg, CPU, target_concurrency=65)
    assert not est.fits and "cannot hold 65" in est.problems[0].message


def test_utilization_beyond_free_memory_is_a_problem_on_a_real_gpu() -> None:
    busy = Device(0, "H100-80GB", 80 * GiB, 30 * GiB, source="nvml", compute_capability=(9, 0))
    est = estimate_memory(ref("llama-3.1-8b"), EngineConfig(max_model_len=4096), busy)
    assert not est.fits
    assert "is free" in est.problems[0].message


def test_safety_margin_is_taken_off_the_limit() -> None:
    cfg = EngineConfig(max_model_len=2048, kv_cache_memory_bytes=64 * MiB)
    base = estimate_memory(tiny(), cfg, CPU)
    tight = estimate_memory(tiny(), cfg, CPU, safety_margin_bytes=base.limit_bytes - base.total_bytes + 1)
    assert base.fits and not tight.fits


def test_correction_scales_weights_and_fixed_pool_tokens() -> None:
    cfg = EngineConfig(max_model_len=2048, kv_cache_memory_bytes=64 * MiB)
    plain = estimate_memory(tiny(), cfg, CPU)
    corrected = estimate_memory(
        tiny(), cfg, CPU, correction=Correction(weights=2.0, kv_tokens=0.5, samples=3)
    )
    assert corrected.weights_bytes == 2 * plain.weights_bytes
    assert corrected.kv.tokens == plain.kv.tokens // 2


# --- constraints --------------------------------------------------------------------------------


def test_heads_not_divisible_by_tp_is_refused_with_the_valid_sizes() -> None:
    est = estimate_memory(ref("llama-3.1-8b"), EngineConfig(tensor_parallel_size=3, max_model_len=4096), H100)
    assert not est.fits
    assert "not divisible by tensor_parallel_size 3" in est.problems[0].message
    assert "1, 2, 4, 8, 16, 32" in est.problems[0].hint


def test_tp_beyond_kv_heads_replicates_them() -> None:
    est = estimate_memory(
        ref("qwen2.5-7b-instruct"), EngineConfig(tensor_parallel_size=7, max_model_len=4096), H100
    )
    assert not est.fits  # 4 KV heads and TP 7: neither divides the other
    dims = ref("qwen2.5-7b-instruct")
    assert valid_tensor_parallel_sizes(dims, 8) == [1, 2, 4]
    dims70 = ref("llama-3.1-70b")
    est16 = estimate_memory(dims70, EngineConfig(tensor_parallel_size=16, max_model_len=4096), H100)
    assert est16.kv_bytes_per_token == 80 * 2 * 1 * 128 * 2  # one replicated KV head per rank
    assert any("replicated" in n for n in est16.notes)


def test_vocab_must_split_over_tp() -> None:
    dims = tiny(num_attention_heads=6, num_kv_heads=6, hidden_size=192, vocab_size=64 * 7)
    est = estimate_memory(dims, EngineConfig(tensor_parallel_size=3, kv_cache_memory_bytes=MiB), H100)
    assert any("vocabulary" in p.message for p in est.problems)


def test_context_beyond_the_model_positions_is_refused() -> None:
    est = estimate_memory(tiny(), EngineConfig(max_model_len=4096, kv_cache_memory_bytes=64 * MiB), CPU)
    assert any("exceeds the model's 2,048 positions" in p.message for p in est.problems)


def test_cpu_refuses_unsupported_head_sizes() -> None:
    est = estimate_memory(tiny(head_dim=48), EngineConfig(kv_cache_memory_bytes=64 * MiB), CPU)
    assert any("head size 48" in p.message for p in est.problems)


def test_awq_on_an_unquantized_checkpoint_is_refused() -> None:
    est = estimate_memory(ref("llama-3.1-8b"), EngineConfig(quantization="awq", max_model_len=4096), H100)
    assert any("needs a checkpoint stored as awq" in p.message for p in est.problems)


def test_bad_engine_configs_are_clear_errors() -> None:
    with pytest.raises(InvalidRequest, match="exclude each other"):
        EngineConfig(gpu_memory_utilization=0.5, kv_cache_memory_bytes=1)
    with pytest.raises(InvalidRequest, match="unknown dtype"):
        EngineConfig(dtype="float12")
    with pytest.raises(InvalidRequest, match="tensor_parallel_size"):
        EngineConfig(tensor_parallel_size=0)


def test_engine_config_from_argv_reads_the_memory_flags() -> None:
    argv = [
        "vllm",
        "serve",
        "/m",
        "--tensor-parallel-size",
        "2",
        "--kv-cache-memory-bytes=1024",
        "--max-model-len",
        "512",
        "--enforce-eager",
        "--dtype",
        "bfloat16",
        "--port",
        "8000",
    ]
    cfg = EngineConfig.from_argv(argv)
    assert (cfg.tensor_parallel_size, cfg.kv_cache_memory_bytes, cfg.max_model_len) == (2, 1024, 512)
    assert cfg.enforce_eager and cfg.dtype == "bfloat16"
    with pytest.raises(InvalidRequest, match="bad value"):
        EngineConfig.from_argv(["--max-model-len", "lots"])
