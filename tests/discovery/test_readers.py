"""The header readers on bad and unusual files: every defect is a FormatError with a reason
(the scanner's "broken"), never another exception; and the GGUF variants (big-endian, split)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.discovery import modelgen as g
from vllm_mcp.discovery import gguf, safetensors
from vllm_mcp.discovery.safetensors import FormatError
from vllm_mcp.discovery.scanner import ScanRoot, scan

TENSORS: list[g.Tensor] = [("a", "F16", [4, 8]), ("b", "F32", [3]), ("c", "I32", [2, 2, 2])]
GGUF_TENSORS = [("w", [256, 4], "Q4_K"), ("n", [8], "F32")]
GGUF_META = {
    "general.architecture": "qwen2",
    "qwen2.block_count": 2,
    "qwen2.context_length": 4096,
    "general.file_type": 15,
    "tokenizer.ggml.tokens": ["a", "b", "c"],
}


def test_single_file_totals(tmp_path: Path) -> None:
    g.write_safetensors(tmp_path / "model.safetensors", TENSORS)
    info = safetensors.weights_info([tmp_path / "model.safetensors"])
    assert (info.param_count, info.weight_bytes, info.tensor_count) == (32 + 3 + 8, 64 + 12 + 32, 3)
    assert info.dtype_params == (("float16", 32), ("int32", 8), ("float32", 3))


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
        safetensors.weights_info([tmp_path / "m.safetensors"])


def test_truncated_data_and_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    g.write_safetensors(path, TENSORS)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - 1)
    with pytest.raises(FormatError, match="truncated: tensors need 108 data bytes"):
        safetensors.weights_info([path])
    header = json.dumps({"x": {"dtype": "F16", "shape": [2], "data_offsets": [4, 0]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(FormatError, match="no valid data_offsets"):
        safetensors.weights_info([path])
    header = json.dumps({"x": {"dtype": "F16", "shape": [-2], "data_offsets": [0, 4]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(FormatError, match="no valid shape"):
        safetensors.weights_info([path])


def test_weight_file_choice() -> None:
    assert safetensors.weight_files(["model.safetensors", "model-1.safetensors"]) == ["model.safetensors"]
    assert safetensors.weight_files(["consolidated.safetensors", "model-00001-of-00001.safetensors"]) == [
        "model-00001-of-00001.safetensors"
    ]
    assert safetensors.weight_files(["consolidated.safetensors", "adapter_model.safetensors"]) == [
        "consolidated.safetensors"
    ]


def test_gguf_little_and_big_endian_read_the_same(tmp_path: Path) -> None:
    little = g.write_gguf(tmp_path / "le.gguf", GGUF_META, GGUF_TENSORS)
    g.write_gguf(tmp_path / "be.gguf", GGUF_META, GGUF_TENSORS, order=">")
    for name in ("le.gguf", "be.gguf"):
        header = gguf.read_header(tmp_path / name)
        info = gguf.weights_info([(tmp_path / name, header)])
        assert (info.param_count, info.weight_bytes) == (256 * 4 + 8, little) == (1032, 4 * 144 + 32)
        assert (
            header.metadata["qwen2.block_count"] == 2 and header.array_lengths["tokenizer.ggml.tokens"] == 3
        )
        cfg = gguf.config_from_gguf(header)
        assert cfg["architectures"] == ["Qwen2ForCausalLM"] and cfg["vocab_size"] == 3
        assert gguf.file_type_name(header, info) == "Q4_K_M"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b"GGML" + b[4:], "bad magic"),
        (lambda b: b[:4] + struct.pack("<I", 1) + b[8:], "version 1 is not supported"),
        (lambda b: b[:60], "truncated inside its GGUF header"),
    ],
)
def test_bad_gguf_files(tmp_path: Path, mutate: object, reason: str) -> None:
    g.write_gguf(tmp_path / "ok.gguf", GGUF_META, GGUF_TENSORS)
    raw = (tmp_path / "ok.gguf").read_bytes()
    (tmp_path / "bad.gguf").write_bytes(mutate(raw))  # type: ignore[operator]
    with pytest.raises(FormatError, match=reason):
        gguf.read_header(tmp_path / "bad.gguf")


def test_gguf_row_not_in_whole_blocks_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="not a multiple of 256"):
        gguf.tensor_bytes("w", (100, 2), 12, "x.gguf")
    with pytest.raises(FormatError, match="unknown ggml type 99"):
        gguf.tensor_bytes("w", (100,), 99, "x.gguf")


def test_split_gguf_is_one_entry_and_missing_parts_are_incomplete(tmp_path: Path) -> None:
    root = tmp_path / "ggufs"
    a = g.write_gguf(root / "big-00001-of-00002.gguf", GGUF_META, GGUF_TENSORS[:1])
    b = g.write_gguf(root / "big-00002-of-00002.gguf", {"general.architecture": "qwen2"}, GGUF_TENSORS[1:])
    g.write_gguf(root / "half-00001-of-00003.gguf", GGUF_META, GGUF_TENSORS)
    (root / "junk.gguf").write_bytes(b"GGUF\x03\x00")
    entries = {e.name: e for e in scan([ScanRoot(tmp_path, "local")], {}).entries()}
    big = entries["big"]
    assert big.kind == "gguf" and big.status == "ok" and big.meta is not None
    assert big.meta.weight_bytes == a + b and big.id == str(root / "big-00001-of-00002.gguf")
    assert entries["half"].status == "incomplete" and "2 of 3 split parts" in entries["half"].problems[0]
    assert entries["junk"].status == "broken" and "junk.gguf" in entries["junk"].problems[0]


def test_sharded_checkpoint_with_a_missing_shard_is_incomplete(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    parts = g.sharded(TENSORS, 3)
    for name, ts in list(parts.items())[:2]:
        g.write_safetensors(folder / name, ts)
    (folder / "model.safetensors.index.json").write_bytes(g.index_json(parts))
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (entry,) = scan([ScanRoot(tmp_path, "local")], {}).entries()
    assert entry.status == "incomplete" and entry.meta is not None and entry.meta.param_count is None
    assert "1 of 3 shards" in entry.problems[0]
