"""``model_meta_from_config`` on published configs: every dimension the optimizer relies on."""

from __future__ import annotations

from tests.discovery import published as pub
from vllm_mcp.core.model_meta import (
    MlaDims,
    MoeDims,
    QuantInfo,
    RopeScaling,
    WeightsInfo,
    kv_cache_bytes_per_token,
    model_meta_from_config,
    normalize_dtype,
)


def test_dense_gqa_llama_31_reads_every_dimension() -> None:
    weights = WeightsInfo(
        "safetensors",
        pub.LLAMA_31_8B_PARAMS,
        2 * pub.LLAMA_31_8B_PARAMS,
        291,
        4,
        (("bfloat16", pub.LLAMA_31_8B_PARAMS),),
    )
    meta = model_meta_from_config(pub.LLAMA_31_8B_INSTRUCT, weights)
    assert meta.architecture == "LlamaForCausalLM"
    assert meta.model_type == "llama"
    assert (meta.num_layers, meta.hidden_size, meta.intermediate_size) == (32, 4096, 14336)
    assert (meta.num_attention_heads, meta.num_kv_heads, meta.head_dim) == (32, 8, 128)
    assert meta.vocab_size == 128256
    assert meta.dtype == "bfloat16"
    assert meta.param_count == 8_030_261_248
    assert meta.weight_bytes == 16_060_522_496
    # llama3 rope scaling: the config already states the extended length.
    assert meta.rope_scaling == RopeScaling("llama3", 8.0, 8192)
    assert meta.context_length == 131072
    assert meta.mla is None and meta.moe is None and meta.quantization is None
    assert meta.tie_word_embeddings is False
    # 2 (K,V) x 32 layers x 8 KV heads x 128 x 2 bytes = 128 KiB per token, the published figure.
    assert kv_cache_bytes_per_token(meta) == 131072


def test_moe_mixtral_reports_experts() -> None:
    meta = model_meta_from_config(pub.MIXTRAL_8X7B_INSTRUCT, None)
    assert meta.moe == MoeDims(
        num_experts=8, experts_per_token=2, moe_intermediate_size=None, shared_experts=None
    )
    assert meta.sliding_window is None
    assert meta.context_length == 32768
    assert meta.param_count is None and meta.weight_bytes is None  # no weights given: unknown


def test_mla_deepseek_v2_lite_yarn_context_and_latent_kv() -> None:
    meta = model_meta_from_config(pub.DEEPSEEK_V2_LITE_CHAT, None)
    assert meta.mla == MlaDims(
        kv_lora_rank=512, q_lora_rank=None, qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128
    )
    assert meta.head_dim == 192  # qk_nope + qk_rope
    assert meta.moe is not None and meta.moe.num_experts == 64 and meta.moe.shared_experts == 2
    assert meta.rope_scaling == RopeScaling("yarn", 40.0, 4096)
    assert meta.context_length == 4096 * 40
    # One latent (512 + 64) per layer, bf16.
    assert kv_cache_bytes_per_token(meta) == 27 * 576 * 2


def test_awq_quantization_and_unused_sliding_window() -> None:
    meta = model_meta_from_config(pub.QWEN25_7B_INSTRUCT_AWQ, None)
    assert meta.quantization == QuantInfo("awq", bits=4, group_size=128, detail="gemm")
    assert meta.sliding_window is None  # use_sliding_window: false
    assert meta.dtype == "float16"
    assert meta.head_dim == 3584 // 28


def test_fp8_block_quantization() -> None:
    meta = model_meta_from_config(pub.QWEN3_8B_FP8, None)
    assert meta.quantization == QuantInfo(
        "fp8", bits=8, group_size=None, detail="e4m3, dynamic activations, 128x128 blocks"
    )
    assert meta.head_dim == 128
    assert meta.context_length == 40960
    assert meta.rope_scaling is None


def test_other_quantization_methods() -> None:
    bnb = {
        "quantization_config": {
            "quant_method": "bitsandbytes",
            "load_in_4bit": True,
            "bnb_4bit_quant_type": "nf4",
        }
    }
    assert model_meta_from_config(bnb, None).quantization == QuantInfo("bitsandbytes", 4, None, "nf4")
    ct = {
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "format": "pack-quantized",
            "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int", "group_size": 128}}},
        }
    }
    assert model_meta_from_config(ct, None).quantization == QuantInfo(
        "compressed-tensors", 4, 128, "pack-quantized, int4"
    )
    gptq_old = {"quantize_config": {"bits": 8, "group_size": 64}}
    assert model_meta_from_config(gptq_old, None).quantization == QuantInfo("gptq", 8, 64, None)


def test_multimodal_text_config_and_linear_rope() -> None:
    cfg = {
        "architectures": ["SomeVLForConditionalGeneration"],
        "model_type": "some_vl",
        "text_config": {
            "num_hidden_layers": 4,
            "hidden_size": 256,
            "num_attention_heads": 8,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "linear", "factor": 2.0},
        },
    }
    meta = model_meta_from_config(cfg, None)
    assert meta.architecture == "SomeVLForConditionalGeneration"
    assert (meta.num_layers, meta.num_kv_heads, meta.head_dim) == (4, 8, 32)
    assert meta.context_length == 8192


def test_garbage_config_gives_nones_not_errors() -> None:
    meta = model_meta_from_config(
        {"architectures": "x", "num_hidden_layers": "32", "rope_scaling": 3, "quantization_config": [1]}, None
    )
    assert meta.architecture is None and meta.num_layers is None and meta.context_length is None
    assert kv_cache_bytes_per_token(meta) is None


def test_normalize_dtype_names() -> None:
    assert normalize_dtype("torch.bfloat16") == "bfloat16"
    assert normalize_dtype("BF16") == "bfloat16"
    assert normalize_dtype("F8_E4M3") == "float8_e4m3"
    assert normalize_dtype(None) is None
    assert normalize_dtype(" Half ") == "float16"  # the spellings the estimator used to normalise itself
    assert normalize_dtype("torch.float8_e4m3fn") == "float8_e4m3"
