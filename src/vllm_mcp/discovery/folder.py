"""Read one model directory (a plain folder or an HF cache snapshot) into ``DiscoveredModel``s.

Only files are read, never code: ``config.json`` (+ an older ``quantize_config.json``), the
safetensors headers, GGUF headers, ``tokenizer_config.json`` / ``chat_template.jinja`` /
``chat_template.json`` for the chat template, ``generation_config.json`` and
``adapter_config.json``. A file that cannot be read or parsed makes the entry ``broken`` with
the reason in ``problems``; a download that is still missing files makes it ``incomplete``.
Nothing in here raises for a bad model: every failure becomes a problem string.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vllm_mcp.api.discovery import (
    DiscoveredModel,
    EntrySource,
    EntryStatus,
    GenerationDefaults,
    LoraInfo,
)
from vllm_mcp.core.model_meta import QuantInfo, WeightsInfo, model_meta_from_config
from vllm_mcp.discovery import gguf
from vllm_mcp.discovery.templates import analyse
from vllm_mcp.engine import model_files
from vllm_mcp.engine.model_files import FormatError

MAX_JSON_BYTES = 32 * 1024 * 1024
PYTORCH_SUFFIXES = (".bin", ".pt", ".pth")


@dataclass(frozen=True)
class FileStat:
    """One file of a directory as ``stat`` saw it (symlinks followed)."""

    size: int
    mtime_ns: int
    ok: bool = True  # False: a dangling symlink or a file that cannot be stat'ed


@dataclass
class DirContext:
    """Where a directory sits: decides ids and labels of the entries read from it."""

    id_base: str  # repo id (or repo@rev) for HF snapshots; the absolute path for plain folders
    name: str
    source: EntrySource
    root: str
    repo_id: str | None = None
    revision: str | None = None
    refs: list[str] = field(default_factory=list)
    incomplete_blobs: tuple[int, int] = (0, 0)  # (.incomplete blobs in the repo, their bytes)


def _json(path: Path) -> Any:
    """Parsed JSON of a small file; ``FormatError`` with a readable reason otherwise."""
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_JSON_BYTES:  # read(n) would allocate n bytes
                raise FormatError(f"{path.name}: larger than {MAX_JSON_BYTES} bytes")
            raw = fh.read()
    except OSError as exc:
        raise FormatError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path.name} is not valid JSON ({exc})") from exc


def _optional_json(folder: Path, files: Mapping[str, FileStat], name: str, problems: list[str]) -> Any:
    if name not in files or not files[name].ok:
        return None
    try:
        data = _json(folder / name)
    except FormatError as exc:
        problems.append(str(exc))
        return None
    return data if isinstance(data, dict) else None


def read_dir(folder: Path, files: Mapping[str, FileStat], ctx: DirContext) -> list[DiscoveredModel]:
    """Every entry of one directory: an adapter, a model, and/or GGUF files."""
    dangling = sorted(n for n, st in files.items() if not st.ok)
    entries: list[DiscoveredModel] = []
    if "adapter_config.json" in files:
        entries.append(_lora(folder, files, ctx, dangling))
    elif "config.json" in files:
        entry = _model(folder, files, ctx, dangling)
        if entry is not None:
            entries.append(entry)
    entries.extend(_ggufs(folder, files, ctx))
    if not entries and ctx.source == "hf-cache":
        entries.append(_empty_snapshot(folder, files, ctx, dangling))
    return entries


def _base(ctx: DirContext, folder: Path, files: Mapping[str, FileStat], **kw: Any) -> DiscoveredModel:
    return DiscoveredModel(
        id=kw.pop("id", ctx.id_base),
        name=kw.pop("name", ctx.name),
        source=ctx.source,
        path=str(kw.pop("path", folder)),
        root=ctx.root,
        repo_id=ctx.repo_id,
        revision=ctx.revision,
        refs=list(ctx.refs),
        size_bytes=sum(st.size for st in files.values() if st.ok),
        file_count=len(files),
        **kw,
    )


def _status(problems: list[str], missing: bool, ctx: DirContext) -> tuple[EntryStatus, list[str]]:
    """broken if anything could not be read; incomplete if files are only missing (a download
    cut short: ``.incomplete`` blobs in the repo are named as the likely cause)."""
    if any(not p.startswith("missing:") for p in problems):
        return "broken", problems
    if not missing:
        return "ok", problems
    count, nbytes = ctx.incomplete_blobs
    if count:
        problems = [
            *problems,
            f"missing: download incomplete, {count} .incomplete blob(s), {nbytes:,} bytes so far",
        ]
    return "incomplete", problems


def _dangling_problems(dangling: list[str]) -> list[str]:
    return [f"dangling symlink {name}: the file it points to is gone" for name in dangling]


def _safetensors_files(
    folder: Path, files: Mapping[str, FileStat], problems: list[str]
) -> tuple[list[str], bool]:
    """(the checkpoint's safetensors files, some are missing) — from the index when there is one."""
    if model_files.INDEX_NAME not in files:
        names = [n for n in files if "/" not in n]
        return [n for n in model_files.weight_files(names) if files[n].ok], False
    try:
        shards = model_files.shards_from_index(folder / model_files.INDEX_NAME)
    except FormatError as exc:
        problems.append(str(exc))
        return [], False
    absent = [s for s in shards if s not in files or not files[s].ok]
    if absent:
        problems.append(f"missing: {len(absent)} of {len(shards)} shards ({', '.join(absent[:3])})")
        return [], True
    return shards, False


def _weights(
    folder: Path, files: Mapping[str, FileStat], problems: list[str]
) -> tuple[WeightsInfo | None, str | None, bool]:
    """(exact weights, format, missing-files) of a model folder's safetensors or .bin files."""
    chosen, missing = _safetensors_files(folder, files, problems)
    if chosen:
        try:
            return model_files.read_weights([folder / n for n in chosen]).info, "safetensors", False
        except FormatError as exc:
            problems.append(str(exc))
            return None, "safetensors", False
    if missing or model_files.INDEX_NAME in files:
        return None, "safetensors", missing
    names = [n for n in files if "/" not in n]
    if any(n.endswith(PYTORCH_SUFFIXES) for n in names):
        return None, "pytorch", False  # pickled weights: sizes only, never unpickled
    if any(n.endswith(".gguf") for n in names):
        return None, None, False  # the GGUF entries carry the weights
    problems.append("missing: no weight files (*.safetensors, *.bin)")
    return None, None, True


def _chat_template(folder: Path, files: Mapping[str, FileStat], tok: Any) -> tuple[str | None, str | None]:
    if "chat_template.jinja" in files and files["chat_template.jinja"].ok:
        try:
            return (folder / "chat_template.jinja").read_text(errors="replace"), "chat_template.jinja"
        except OSError:
            pass
    if "chat_template.json" in files and files["chat_template.json"].ok:
        try:
            data = _json(folder / "chat_template.json")
            if isinstance(data, dict) and isinstance(data.get("chat_template"), str):
                return data["chat_template"], "chat_template.json"
        except FormatError:
            pass
    template = tok.get("chat_template") if isinstance(tok, dict) else None
    if isinstance(template, list):  # [{name: default, template}, {name: tool_use, template}]
        template = "\n".join(str(t.get("template", "")) for t in template if isinstance(t, dict))
    return (template, "tokenizer_config.json") if isinstance(template, str) and template else (None, None)


def _generation(data: Any) -> GenerationDefaults | None:
    if not isinstance(data, dict):
        return None
    fields = GenerationDefaults.model_fields
    picked = {k: v for k, v in data.items() if k in fields and isinstance(v, int | float | bool)}
    try:
        return GenerationDefaults.model_validate(picked)
    except ValueError:
        return None


def _model(
    folder: Path, files: Mapping[str, FileStat], ctx: DirContext, dangling: list[str]
) -> DiscoveredModel | None:
    problems = _dangling_problems(dangling)
    config: Any = None
    if files["config.json"].ok:
        try:
            config = _json(folder / "config.json")
        except FormatError as exc:
            problems.append(str(exc))
    if config is not None and not isinstance(config, dict):
        problems.append("config.json is not a JSON object")
        config = None
    if (
        isinstance(config, dict)
        and ctx.source == "local"
        and not ("architectures" in config or "model_type" in config)
    ):
        return None  # some other tool's config.json, not a model folder
    if isinstance(config, dict) and "quantization_config" not in config:
        for name in ("quantize_config.json", "quant_config.json"):
            extra = _optional_json(folder, files, name, problems)
            if extra:
                config = {**config, "quantization_config": extra}
                break
    weights, fmt, missing = _weights(folder, files, problems)
    tok = _optional_json(folder, files, "tokenizer_config.json", problems)
    template, source = _chat_template(folder, files, tok)
    meta = model_meta_from_config(config, weights) if isinstance(config, dict) else None
    status, problems = _status(problems, missing, ctx)
    return _base(
        ctx,
        folder,
        files,
        kind="model",
        status=status,
        problems=problems,
        weights_format=fmt,
        meta=meta,
        chat_template=analyse(template, source, meta.model_type if meta else None),
        generation=_generation(_optional_json(folder, files, "generation_config.json", problems)),
    )


def _lora(
    folder: Path, files: Mapping[str, FileStat], ctx: DirContext, dangling: list[str]
) -> DiscoveredModel:
    problems = _dangling_problems(dangling)
    cfg = _optional_json(folder, files, "adapter_config.json", problems)
    weights: WeightsInfo | None = None
    missing = False
    if model_files.ADAPTER_NAME in files and files[model_files.ADAPTER_NAME].ok:
        try:
            weights = model_files.read_weights([folder / model_files.ADAPTER_NAME]).info
        except FormatError as exc:
            problems.append(str(exc))
    elif "adapter_model.bin" not in files:
        problems.append("missing: adapter_model.safetensors")
        missing = True
    if cfg is None and not problems:
        problems.append("adapter_config.json is not a JSON object")
    info = LoraInfo()
    if isinstance(cfg, dict):
        modules = cfg.get("target_modules")
        info = LoraInfo(
            base_model=str(cfg["base_model_name_or_path"]) if cfg.get("base_model_name_or_path") else None,
            rank=cfg.get("r") if isinstance(cfg.get("r"), int) else None,
            alpha=float(cfg["lora_alpha"]) if isinstance(cfg.get("lora_alpha"), int | float) else None,
            target_modules=[str(m) for m in modules] if isinstance(modules, list) else [],
            peft_type=str(cfg["peft_type"]) if cfg.get("peft_type") else None,
        )
    status, problems = _status(problems, missing, ctx)
    return _base(
        ctx,
        folder,
        files,
        kind="lora",
        status=status,
        problems=problems,
        weights_format="safetensors" if weights else None,
        meta=model_meta_from_config({}, weights) if weights else None,
        lora=info,
    )


def _ggufs(folder: Path, files: Mapping[str, FileStat], ctx: DirContext) -> list[DiscoveredModel]:
    """One entry per GGUF model: a single file, or the parts of a split file together."""
    groups: dict[str, list[str]] = {}
    for name in sorted(n for n in files if n.endswith(".gguf") and "/" not in n):
        split = gguf.split_part(name)
        groups.setdefault(f"{split[0]}.gguf" if split else name, []).append(name)
    return [_gguf(folder, files, ctx, key, parts) for key, parts in groups.items()]


def _gguf(
    folder: Path, files: Mapping[str, FileStat], ctx: DirContext, key: str, parts: list[str]
) -> DiscoveredModel:
    problems = _dangling_problems([p for p in parts if not files[p].ok])
    split = gguf.split_part(parts[0])
    missing = split is not None and len(parts) < split[2]
    if split is not None and len(parts) < split[2]:
        problems.append(f"missing: {split[2] - len(parts)} of {split[2]} split parts")
    meta = template = None
    if not missing and not problems:
        try:
            headers = [(folder / p, gguf.read_header(folder / p)) for p in parts]
            weights = gguf.weights_info(headers)
            first = headers[0][1]
            meta = model_meta_from_config(gguf.config_from_gguf(first), weights)
            quant = QuantInfo("gguf", detail=gguf.file_type_name(first, weights))
            meta = dataclasses.replace(meta, quantization=quant)
            chat = first.metadata.get("tokenizer.chat_template")
            template = chat if isinstance(chat, str) else None
        except FormatError as exc:
            problems.append(str(exc))
    status, problems = _status(problems, missing, ctx)
    path = folder / parts[0]
    ident = str(path) if ctx.source == "local" else f"{ctx.id_base}/{parts[0]}"
    sub = {p: files[p] for p in parts}
    return _base(
        ctx,
        folder,
        sub,
        id=ident,
        name=key.removesuffix(".gguf"),
        path=path,
        kind="gguf",
        status=status,
        problems=problems,
        weights_format="gguf",
        meta=meta,
        chat_template=analyse(template, "gguf:tokenizer.chat_template", meta.model_type if meta else None),
    )


def _empty_snapshot(
    folder: Path, files: Mapping[str, FileStat], ctx: DirContext, dangling: list[str]
) -> DiscoveredModel:
    problems = _dangling_problems(dangling)
    problems.append("missing: no config.json, adapter_config.json or .gguf file")
    status, problems = _status(problems, True, ctx)
    return _base(ctx, folder, files, kind="model", status=status, problems=problems)
