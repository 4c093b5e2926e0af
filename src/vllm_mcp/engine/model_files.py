"""Reading the model artefacts vLLM will load: exact totals from safetensors headers.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON mapping each
tensor name to ``{dtype, shape, data_offsets: [begin, end]}`` (plus an optional
``__metadata__``), then the data. Parameters = Σ prod(shape); bytes = Σ (end - begin), exact
whatever the dtype. A sharded checkpoint lists its shards in ``model.safetensors.index.json``
(``weight_map``: tensor → file). Only headers are read, never tensor data, so a 140 GB
checkpoint costs a few milliseconds.

The one reader for discovery (what a model folder holds) and the optimizer (what a model needs
in memory); they are siblings, so it lives here, below both.

Everything here raises ``FormatError`` (a message fit for a person, naming the file) on a bad or
truncated file; each caller translates it at its boundary: the discovery scanner into a
"broken" entry, the optimizer into ``InvalidRequest``.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vllm_mcp.core.model_meta import WeightsInfo, normalize_dtype

__all__ = [
    "ADAPTER_NAME",
    "EMBEDDING_MARKERS",
    "INDEX_NAME",
    "MAX_HEADER_BYTES",
    "SINGLE_NAME",
    "CheckpointWeights",
    "FormatError",
    "HeaderTotals",
    "checkpoint_files",
    "header_totals",
    "read_header",
    "read_weights",
    "shards_from_index",
    "weight_files",
]

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
ADAPTER_NAME = "adapter_model.safetensors"
MAX_HEADER_BYTES = 256 * 1024 * 1024  # real headers are ≤ a few MB; refuse absurd lengths
#: Tensor names of the token embedding and the LM head: they sit on the first/last PP stage.
EMBEDDING_MARKERS = ("embed_tokens", "lm_head", "wte.", "word_embeddings", "embed_out", "tok_embeddings")


class FormatError(ValueError):
    """A model file is not what its name says (bad header, truncated, bad JSON)."""


@dataclass(frozen=True)
class HeaderTotals:
    """What one header declares."""

    params: int
    nbytes: int
    tensors: int
    dtype_params: dict[str, int]
    embedding_params: int  # parameters of the tensors named by ``EMBEDDING_MARKERS``


@dataclass(frozen=True)
class CheckpointWeights:
    """Exact totals over the files of one checkpoint."""

    info: WeightsInfo
    embedding_params: int


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of one safetensors file, checked against the file's size."""
    try:
        with path.open("rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                raise FormatError(f"{path.name}: too short to be safetensors ({len(raw_len)} bytes)")
            (length,) = struct.unpack("<Q", raw_len)
            if length == 0 or length > MAX_HEADER_BYTES:
                raise FormatError(f"{path.name}: header length {length} is not plausible")
            blob = fh.read(length)
            size = _size(fh)
    except OSError as exc:
        raise FormatError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    if len(blob) < length:
        raise FormatError(f"{path.name}: truncated inside its header ({len(blob)} of {length} bytes)")
    try:
        header = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path.name}: header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise FormatError(f"{path.name}: header is not a JSON object")
    data_len = size - 8 - length
    end = max((_offsets(v, k, path.name)[1] for k, v in header.items() if k != "__metadata__"), default=0)
    if end > data_len:
        raise FormatError(
            f"{path.name}: truncated: tensors need {end} data bytes, the file has {max(data_len, 0)}"
        )
    return header


def _size(fh: BinaryIO) -> int:
    fh.seek(0, 2)
    return int(fh.tell())


def _offsets(entry: Any, name: str, file: str) -> tuple[int, int]:
    try:
        begin, end = entry["data_offsets"]
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{file}: tensor {name!r} has no valid data_offsets") from None
    return begin, end


def header_totals(header: dict[str, Any], file: str = "header") -> HeaderTotals:
    """Parameters, bytes, per-dtype and embedding parameters declared by one header."""
    params = nbytes = tensors = embedding = 0
    by_dtype: Counter[str] = Counter()
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = _offsets(entry, name, file)
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise FormatError(f"{file}: tensor {name!r} has no valid shape")
        count = math.prod(shape)
        dtype = normalize_dtype(str(entry.get("dtype", ""))) or "unknown"
        params += count
        nbytes += end - begin
        tensors += 1
        by_dtype[dtype] += count
        if any(marker in name for marker in EMBEDDING_MARKERS):
            embedding += count
    return HeaderTotals(params, nbytes, tensors, dict(by_dtype), embedding)


def read_weights(files: Sequence[Path]) -> CheckpointWeights:
    """Exact totals over the given safetensors files (the shards of one checkpoint)."""
    params = nbytes = tensors = embedding = 0
    by_dtype: Counter[str] = Counter()
    for path in files:
        totals = header_totals(read_header(path), path.name)
        params += totals.params
        nbytes += totals.nbytes
        tensors += totals.tensors
        embedding += totals.embedding_params
        by_dtype.update(totals.dtype_params)
    ranked = tuple(sorted(by_dtype.items(), key=lambda kv: (-kv[1], kv[0])))
    return CheckpointWeights(
        WeightsInfo("safetensors", params, nbytes, tensors, len(files), ranked), embedding
    )


def weight_files(names: Iterable[str]) -> list[str]:
    """Which ``*.safetensors`` of a folder hold the model, when there is no index.

    ``model.safetensors`` alone if present; otherwise every top-level shard, leaving out Mistral's
    duplicate ``consolidated*.safetensors`` when HF-format shards sit beside it, and the adapter.
    """
    files = sorted(n for n in names if n.endswith(".safetensors") and n != ADAPTER_NAME)
    if SINGLE_NAME in files:
        return [SINGLE_NAME]
    hf = [n for n in files if not n.startswith("consolidated")]
    return hf or files


def shards_from_index(index_path: Path) -> list[str]:
    """The shard file names a ``model.safetensors.index.json`` refers to."""
    try:
        data = json.loads(index_path.read_bytes())
    except OSError as exc:
        raise FormatError(f"{index_path.name}: cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{index_path.name}: not valid JSON ({exc})") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FormatError(f"{index_path.name}: no weight_map")
    return sorted({str(v) for v in weight_map.values()})


def checkpoint_files(folder: Path) -> list[Path]:
    """The safetensors files of the checkpoint in ``folder``: the index's shards when there is an
    index, else ``weight_files`` of the folder. A missing or dangling file is not dropped here: it
    fails in ``read_header`` with its name."""
    if (folder / INDEX_NAME).is_file():
        return [folder / name for name in shards_from_index(folder / INDEX_NAME)]
    return [folder / name for name in weight_files(p.name for p in folder.glob("*.safetensors"))]
