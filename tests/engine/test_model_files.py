"""The safetensors reader (``engine.model_files``) shared by discovery and the optimizer: exact
totals from data_offsets, the choice of checkpoint files, and every defect a FormatError with a
reason (never another exception)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.discovery import modelgen as g
from vllm_mcp.engine import model_files
from vllm_mcp.engine.model_files import FormatError

TENSORS: list[g.Tensor] = [("a", "F16", [4, 8]), ("b", "F32", [3]), ("c", "I32", [2, 2, 2])]


def test_single_file_totals(tmp_path: Path) -> None:
    g.write_safetensors(tmp_path / "model.safetensors", TENSORS)
    info = model_files.read_weights([tmp_path / "model.safetensors"]).info
    assert (info.param_count, info.weight_bytes, info.tensor_count) == (32 + 3 + 8, 64 + 12 + 32, 3)
    assert info.dtype_params == (("float16", 32), ("int32", 8), ("float32", 3))
    assert (info.format, info.file_count) == ("safetensors", 1)


def test_sharded_totals_and_embedding_params(tmp_path: Path) -> None:
    tensors: list[g.Tensor] = [
        ("model.embed_tokens.weight", "BF16", [256, 64]),
        ("model.layers.0.mlp.up_proj.weight", "BF16", [128, 64]),
        ("model.norm.weight", "F32", [64]),
        ("lm_head.weight", "BF16", [256, 64]),
    ]
    parts = g.sharded(tensors, 2)
    for name, ts in parts.items():
        g.write_safetensors(tmp_path / name, ts)
    (tmp_path / model_files.INDEX_NAME).write_bytes(g.index_json(parts))
    files = model_files.checkpoint_files(tmp_path)
    assert [f.name for f in files] == sorted(parts)
    weights = model_files.read_weights(files)
    assert (weights.info.param_count, weights.info.weight_bytes) == g.totals(tensors)
    assert weights.info.file_count == 2 and weights.info.main_dtype == "bfloat16"
    assert weights.embedding_params == 2 * 256 * 64


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x01\x02", "too short"),
        (struct.pack("<Q", 0), "not plausible"),
        (struct.pack("<Q", 1 << 40), "not plausible"),
        (struct.pack("<Q", 100) + b"{}", "truncated inside its header"),
        (struct.pack("<Q", 5) + b"nope!", "not valid JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (struct.pack("<Q", 30) + b'{"x":{"dtype":"F16","shape":[2]}}'[:30], "not valid JSON"),
    ],
)
def test_bad_safetensors_headers(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "m.safetensors").write_bytes(content)
    with pytest.raises(FormatError, match=reason):
        model_files.read_weights([tmp_path / "m.safetensors"])


def test_truncated_data_and_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    g.write_safetensors(path, TENSORS)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 1)
    with pytest.raises(FormatError, match="truncated: tensors need 108 data bytes"):
        model_files.read_weights([path])
    header = json.dumps({"x": {"dtype": "F16", "shape": [2], "data_offsets": [4, 0]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(FormatError, match="no valid data_offsets"):
        model_files.read_weights([path])
    header = json.dumps({"x": {"dtype": "F16", "shape": [-2], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(FormatError, match="no valid shape"):
        model_files.read_weights([path])


def test_a_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"gone\.safetensors: cannot read"):
        model_files.read_weights([tmp_path / "gone.safetensors"])


def test_weight_file_choice() -> None:
    assert model_files.weight_files(["model.safetensors", "model-1.safetensors"]) == ["model.safetensors"]
    assert model_files.weight_files(["consolidated.safetensors", "model-00001-of-00001.safetensors"]) == [
        "model-00001-of-00001.safetensors"
    ]
    assert model_files.weight_files(["consolidated.safetensors", "adapter_model.safetensors"]) == [
        "consolidated.safetensors"
    ]


def test_checkpoint_files_of_a_folder_without_index(tmp_path: Path) -> None:
    for name in ("consolidated.safetensors", "model-00001-of-00001.safetensors", "adapter_model.safetensors"):
        g.write_safetensors(tmp_path / name, TENSORS)
    (tmp_path / "config.json").write_text("{}")
    assert model_files.checkpoint_files(tmp_path) == [tmp_path / "model-00001-of-00001.safetensors"]
    assert model_files.checkpoint_files(tmp_path / "empty") == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{", "not valid JSON"), (b"{}", "no weight_map"), (b'{"weight_map": {}}', "no weight_map")],
)
def test_bad_index_files(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / model_files.INDEX_NAME).write_bytes(content)
    with pytest.raises(FormatError, match=reason):
        model_files.checkpoint_files(tmp_path)
