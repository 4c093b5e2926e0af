"""Model dimensions from files: the test bed's tiny model, a sharded checkpoint, broken files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.testbed import tiny_model
from vllm_mcp.errors import InvalidRequest, NotFound
from vllm_mcp.optimizer.model_files import load_model_dims


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "I32": 4, "F8_E4M3": 1}
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n * sizes[dtype]]}
        offset += n * sizes[dtype]
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0" * offset)


def test_the_tiny_model_reads_exactly(tmp_path: Path) -> None:
    folder = tiny_model()
    if not (folder / "config.json").is_file():
        pytest.skip("tiny model not built (make testbed)")
    dims = load_model_dims(str(folder))
    assert (dims.num_layers, dims.num_attention_heads, dims.num_kv_heads, dims.head_dim) == (2, 4, 2, 32)
    assert dims.dtype == "float32" and dims.tie_word_embeddings
    assert dims.weight_bytes == (folder / "model.safetensors").stat().st_size - 8 - _header_len(folder)
    assert dims.embedding_params == 2048 * 128
    assert dims.weight_bytes == dims.param_count * 4


def _header_len(folder: Path) -> int:
    with (folder / "model.safetensors").open("rb") as fh:
        return int(struct.unpack("<Q", fh.read(8))[0])


def test_a_sharded_gemma_style_checkpoint(tmp_path: Path) -> None:
    config = {
        "architectures": ["Gemma2ForCausalLM"],
        "model_type": "gemma2",
        "num_hidden_layers": 4,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "vocab_size": 256,
        "intermediate_size": 128,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
        "torch_dtype": "bfloat16",
        "tie_word_embeddings": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    write_safetensors(tmp_path / "a.safetensors", {"model.embed_tokens.weight": ("BF16", [256, 64])})
    write_safetensors(tmp_path / "b.safetensors", {"model.layers.0.mlp.up_proj.weight": ("BF16", [128, 64])})
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"model.embed_tokens.weight": "a.safetensors", "x": "b.safetensors"}})
    )
    dims = load_model_dims(str(tmp_path))
    assert dims.param_count == 256 * 64 + 128 * 64
    assert dims.weight_bytes == 2 * dims.param_count
    assert dims.embedding_params == 256 * 64
    assert dims.sliding_layers == (0, 2) and dims.sliding_window == 4096


def test_layer_types_and_unused_windows(tmp_path: Path) -> None:
    base = {"num_hidden_layers": 3, "hidden_size": 64, "num_attention_heads": 2, "vocab_size": 10}
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                **base,
                "sliding_window": 128,
                "layer_types": ["sliding_attention", "full_attention", "sliding_attention"],
            }
        )
    )
    assert load_model_dims(str(tmp_path)).sliding_layers == (0, 2)
    (tmp_path / "config.json").write_text(
        json.dumps({**base, "sliding_window": 128, "use_sliding_window": False})
    )
    assert load_model_dims(str(tmp_path)).sliding_window is None


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InvalidRequest, match="not readable JSON"):
        load_model_dims(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 2}))
    with pytest.raises(InvalidRequest, match="does not give hidden_size"):
        load_model_dims(str(tmp_path))
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x05")
    with pytest.raises(InvalidRequest, match=r"x\.safetensors: too short"):
        load_model_dims(str(tmp_path))
    bad.write_bytes(struct.pack("<Q", 4) + b"nope")
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        load_model_dims(str(tmp_path))
    write_safetensors(bad, {"w": ("F32", [4])})
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(InvalidRequest, match="truncated: tensors need 16 data bytes"):
        load_model_dims(str(tmp_path))


def test_unknown_models_say_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"no config\.json") as info:
        load_model_dims(str(tmp_path / "missing"), cache_dir=tmp_path)
    assert "meta-llama/llama-3.1-8b" in info.value.hint
    with pytest.raises(NotFound):
        load_model_dims("someone/not-cached", cache_dir=tmp_path)
    assert load_model_dims("Qwen/Qwen3-8B", cache_dir=tmp_path).num_layers == 36
