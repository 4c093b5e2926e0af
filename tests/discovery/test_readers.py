"""The GGUF reader on bad and unusual files: every defect is a FormatError with a reason (the
scanner's "broken"), never another exception; the GGUF variants (big-endian, split); missing
shards. The safetensors reader is tested with its module, in tests/engine/test_model_files.py."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.discovery import modelgen as g
from vllm_mcp.discovery import gguf
from vllm_mcp.discovery.scanner import ScanRoot, scan
from vllm_mcp.engine.model_files import FormatError

TENSORS: list[g.Tensor] = [("a", "F16", [4, 8]), ("b", "F32", [3]), ("c", "I32", [2, 2, 2])]
GGUF_TENSORS = [("w", [256, 4], "Q4_K"), ("n", [8], "F32")]
GGUF_META = {
    "general.architecture": "qwen2",
    "qwen2.block_count": 2,
    "qwen2.context_length": 4096,
    "general.file_type": 15,
    "tokenizer.ggml.tokens": ["a", "b", "c"],
}


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
