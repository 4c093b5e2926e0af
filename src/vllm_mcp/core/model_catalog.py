"""Published dimensions of a few well-known models, for planning without their files. Pure.

Numbers are those of each model's ``config.json`` and the parameter count its safetensors index
states. A model on disk is always read from its own files instead (``optimizer.model_files``).
Look-ups ignore case and accept the HF id or the short name (``meta-llama/Llama-3.1-8B`` or
``llama-3.1-8b``).
"""

from __future__ import annotations

from vllm_mcp.core.model_dims import ModelDims

__all__ = ["REFERENCE_MODELS", "reference_model"]


def _llama(
    name: str,
    layers: int,
    hidden: int,
    heads: int,
    inter: int,
    params: int,
    *,
    tied: bool = False,
    head_dim: int = 128,
    vocab: int = 128_256,
    kv: int = 8,
    max_pos: int = 131_072,
) -> ModelDims:
    return ModelDims(
        name=name,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        vocab_size=vocab,
        param_count=params,
        intermediate_size=inter,
        max_position_embeddings=max_pos,
        tie_word_embeddings=tied,
    )


REFERENCE_MODELS: dict[str, ModelDims] = {
    m.name.lower(): m
    for m in (
        _llama("meta-llama/Llama-3.1-8B", 32, 4096, 32, 14_336, 8_030_261_248),
        _llama("meta-llama/Llama-3.1-70B", 80, 8192, 64, 28_672, 70_553_706_496),
        _llama("meta-llama/Llama-3.2-1B", 16, 2048, 32, 8192, 1_235_814_400, tied=True, head_dim=64),
        _llama("meta-llama/Llama-3.2-3B", 28, 3072, 24, 8192, 3_212_749_824, tied=True),
        _llama(
            "Qwen/Qwen2.5-7B-Instruct",
            28,
            3584,
            28,
            18_944,
            7_615_616_512,
            vocab=152_064,
            kv=4,
            max_pos=32_768,
        ),
        _llama(
            "Qwen/Qwen2.5-Coder-32B-Instruct",
            64,
            5120,
            40,
            27_648,
            32_763_876_352,
            vocab=152_064,
            max_pos=32_768,
        ),
        _llama("Qwen/Qwen3-8B", 36, 4096, 32, 12_288, 8_190_735_360, vocab=151_936, max_pos=40_960),
        _llama(
            "mistralai/Mistral-7B-Instruct-v0.3",
            32,
            4096,
            32,
            14_336,
            7_248_023_552,
            vocab=32_768,
            max_pos=32_768,
        ),
        ModelDims(
            name="google/gemma-2-9b-it",
            num_layers=42,
            hidden_size=3584,
            num_attention_heads=16,
            num_kv_heads=8,
            head_dim=256,
            vocab_size=256_000,
            param_count=9_241_705_984,
            intermediate_size=14_336,
            max_position_embeddings=8192,
            tie_word_embeddings=True,
            sliding_window=4096,
            sliding_layers=tuple(range(0, 42, 2)),
        ),
        ModelDims(
            name="deepseek-ai/DeepSeek-V3",
            num_layers=61,
            hidden_size=7168,
            num_attention_heads=128,
            num_kv_heads=128,
            head_dim=192,
            vocab_size=129_280,
            param_count=671_000_000_000,
            intermediate_size=18_432,
            max_position_embeddings=163_840,
            dtype="float8_e4m3",
            quantization="fp8",
            kv_lora_rank=512,
            qk_rope_head_dim=64,
        ),
    )
}


def reference_model(name: str) -> ModelDims | None:
    """A reference model by HF id or by the part after the slash, case-insensitive."""
    key = name.strip().lower()
    if key in REFERENCE_MODELS:
        return REFERENCE_MODELS[key]
    for full, dims in REFERENCE_MODELS.items():
        if full.split("/", 1)[-1] == key:
            return dims
    return None
