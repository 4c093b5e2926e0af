"""Read a model's dimensions from its files: ``config.json`` plus the safetensors headers.

Model sources: a local folder, an HF id found in the local Hugging Face cache (no network), or —
when neither has files — the published dimensions in ``core.model_catalog``. The config is
interpreted by ``core.model_meta`` and the headers by ``engine.model_files`` (both shared with
discovery); this module adds the two numbers the estimator needs beyond them: the exact embedding
parameters (they sit on the first/last pipeline stage) and which layers slide.
"""

from __future__ import annotations

import json
from pathlib import Path

from vllm_mcp.core.model_catalog import REFERENCE_MODELS, reference_model
from vllm_mcp.core.model_dims import ModelDims, dims_from_meta, sliding_layers_from_config
from vllm_mcp.core.model_meta import model_meta_from_config
from vllm_mcp.engine.model_files import CheckpointWeights, FormatError, checkpoint_files, read_weights
from vllm_mcp.errors import InvalidRequest, NotFound

__all__ = ["find_model_dir", "load_model_dims"]


def _checkpoint(folder: Path) -> CheckpointWeights | None:
    """Exact totals of the folder's safetensors checkpoint (None when it has none)."""
    try:
        files = checkpoint_files(folder)
        return read_weights(files) if files else None
    except FormatError as exc:
        raise InvalidRequest(
            f"cannot read the weights in {folder}: {exc}",
            hint="the named file is damaged or incomplete: download the model again",
            field="model",
        ) from exc


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
    totals = _checkpoint(folder)
    meta = model_meta_from_config(config, totals.info if totals else None)
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
