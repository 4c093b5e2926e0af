"""Read a model's dimensions from its files: ``config.json`` plus the safetensors headers.

Only headers are read (8-byte length + JSON), never tensor data, so a 140 GB checkpoint costs a
few milliseconds. Model sources: a local folder, an HF id found in the local Hugging Face cache
(no network), or — when neither has files — the published dimensions in
``core.model_catalog``. The config is interpreted by ``core.model_meta`` (shared with discovery);
this module adds the two numbers the estimator needs beyond it: the exact embedding parameters
(they sit on the first/last pipeline stage) and which layers slide.

Discovery has its own header reader; the layer rules keep sibling packages from importing each
other, and this one is small.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm_mcp.core.model_catalog import REFERENCE_MODELS, reference_model
from vllm_mcp.core.model_dims import ModelDims, dims_from_meta, normalize_dtype, sliding_layers_from_config
from vllm_mcp.core.model_meta import WeightsInfo, model_meta_from_config
from vllm_mcp.errors import InvalidRequest, NotFound

__all__ = ["HeaderTotals", "find_model_dir", "load_model_dims", "read_weights"]

MAX_HEADER = 256 * 1024 * 1024
_EMBED_MARKERS = ("embed_tokens", "lm_head", "wte.", "word_embeddings", "embed_out", "tok_embeddings")
_ST_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip


@dataclass(frozen=True)
class HeaderTotals:
    weights: WeightsInfo
    embedding_params: int


def _read_header(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise InvalidRequest(f"{path} is too short to be a safetensors file", field="model")
            (length,) = struct.unpack("<Q", raw)
            if not 0 < length <= MAX_HEADER:
                raise InvalidRequest(f"{path} has an implausible safetensors header", field="model")
            blob = fh.read(length)
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}", field="model") from exc
    try:
        header = json.loads(blob)
    except ValueError as exc:
        raise InvalidRequest(f"{path}: the safetensors header is not JSON ({exc})", field="model") from None
    if not isinstance(header, dict):
        raise InvalidRequest(f"{path}: the safetensors header is not an object", field="model")
    return header


def read_weights(files: Iterable[Path]) -> HeaderTotals:
    """Exact parameter and byte totals of safetensors files, plus the embedding parameters."""
    params = nbytes = tensors = embed = 0
    by_dtype: Counter[str] = Counter()
    count = 0
    for path in files:
        count += 1
        for name, entry in _read_header(path).items():
            if name == "__metadata__" or not isinstance(entry, dict):
                continue
            shape = entry.get("shape") or []
            n = math.prod(int(d) for d in shape)
            begin, end = entry.get("data_offsets") or (0, 0)
            dtype = str(entry.get("dtype", ""))
            size = int(end) - int(begin) if end else n * _ST_DTYPES.get(dtype, 0)
            params += n
            nbytes += size
            tensors += 1
            by_dtype[normalize_dtype(dtype)] += n
            if any(m in name for m in _EMBED_MARKERS):
                embed += n
    info = WeightsInfo(
        format="safetensors",
        param_count=params,
        weight_bytes=nbytes,
        tensor_count=tensors,
        file_count=count,
        dtype_params=tuple(by_dtype.most_common()),
    )
    return HeaderTotals(info, embed)


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text()).get("weight_map", {})
        except (OSError, ValueError) as exc:
            raise InvalidRequest(f"{index} is not readable JSON: {exc}", field="model") from None
        return [folder / name for name in sorted(set(weight_map.values()))]
    return sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith("adapter_"))


def find_model_dir(model: str, cache_dir: Path | None = None) -> Path | None:
    """A local folder holding ``config.json`` for ``model`` (a path or a cached HF id), or None."""
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return path
    if model.count("/") != 1 or model.startswith(("/", ".", "~")):
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model, "config.json", cache_dir=str(cache_dir) if cache_dir else None)
    return Path(found).parent if isinstance(found, str) else None


def dims_from_folder(folder: Path, name: str) -> ModelDims:
    """``ModelDims`` of the model in ``folder`` (config.json + safetensors headers)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{folder}/config.json is not readable JSON: {exc}", field="model") from None
    if not isinstance(config, dict):
        raise InvalidRequest(f"{folder}/config.json is not a JSON object", field="model")
    files = _weight_files(folder)
    totals = read_weights(files) if files else None
    meta = model_meta_from_config(config, totals.weights if totals else None)
    layers = meta.num_layers or 0
    return dims_from_meta(
        meta,
        name=name,
        sliding_layers=sliding_layers_from_config(config, layers),
        embedding_params=totals.embedding_params if totals else 0,
    )


def load_model_dims(model: str, cache_dir: Path | None = None) -> ModelDims:
    """Dimensions of ``model``: its files when we have them, else the reference catalog.

    Raises ``NotFound`` saying where we looked and what else is accepted.
    """
    folder = find_model_dir(model, cache_dir)
    if folder is not None:
        return dims_from_folder(folder, model)
    ref = reference_model(model)
    if ref is not None:
        return ref
    names = ", ".join(sorted(REFERENCE_MODELS))
    raise NotFound(
        f"no config.json for model {model!r} (not a model folder, not in the Hugging Face cache)",
        hint=f"give a local model folder, download the model first, or use a reference model: {names}",
        model=model,
    )
