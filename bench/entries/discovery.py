"""Discovery scan time over ``folders`` synthetic model folders (default 1,000).

Each folder is what a real one holds for the scanner: ``config.json`` (Llama-shaped, sizes
varied), a real ``model.safetensors`` (a valid header and small data), ``tokenizer_config.json``
with a chat template, ``generation_config.json``. Measured through ``Discovery.rescan`` — the
daemon's path: walk, fingerprint, read, and write the SQLite index.

1. cold: an empty index (a fresh database) — every folder read and written. Goal ≤ 0.5 s.
   The OS page cache is warm after the first run (dropping it would disturb the whole box).
2. no-change rescan: the index is current — stat only, nothing read, nothing written. Goal ≤ 50 ms.

3. endpoint probe of ``ports`` closed loopback ports (the engine range when nothing runs):
   goal ≤ 1 s. No baseline.

Baselines, same run: the least any such scan must do — (1) read each folder's config.json and
safetensors header with plain Python, (2) ``os.scandir`` + ``stat`` every file.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import struct
import tempfile
import time
from pathlib import Path

import anyio

from bench.harness import Entry, Goal, Params, Row, median_time

COLD_GOAL_S = 0.5
RESCAN_GOAL_MS = 50.0
PROBE_GOAL_MS = 1000.0
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"


def _safetensors(path: Path, hidden: int, layers: int) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    names = [("model.embed_tokens.weight", [256, hidden])]
    for i in range(layers):
        names += [
            (f"model.layers.{i}.self_attn.q_proj.weight", [hidden, hidden]),
            (f"model.layers.{i}.input_layernorm.weight", [hidden]),
        ]
    for name, shape in names:
        size = 2 * shape[0] * (shape[1] if len(shape) > 1 else 1)
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(blob)) + blob)
        fh.truncate(8 + len(blob) + offset)


def build(root: Path, folders: int) -> None:
    for i in range(folders):
        d = root / f"org-{i // 100:02d}" / f"model-{i:04d}"
        d.mkdir(parents=True)
        hidden, layers = 64 * (1 + i % 4), 2 + i % 3
        config = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "intermediate_size": 4 * hidden,
            "vocab_size": 256,
            "max_position_embeddings": 4096,
            "torch_dtype": "bfloat16",
        }
        (d / "config.json").write_text(json.dumps(config))
        (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE}))
        (d / "generation_config.json").write_text(json.dumps({"temperature": 0.7, "top_p": 0.9}))
        _safetensors(d / "model.safetensors", hidden, layers)


def _read_floor(root: Path) -> None:
    for cfg in root.glob("*/*/config.json"):
        json.loads(cfg.read_bytes())
        with (cfg.parent / "model.safetensors").open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            json.loads(fh.read(n))


def _stat_floor(root: Path) -> None:
    for org in os.scandir(root):
        for model in os.scandir(org.path):
            for f in os.scandir(model.path):
                f.stat()


def _timed_rescans(
    root: Path, work: Path, cold_runs: int, rescans: int
) -> tuple[list[float], list[float], int]:
    from vllm_mcp.config import Settings
    from vllm_mcp.discovery.service import Discovery
    from vllm_mcp.store import Database

    settings = Settings.model_validate(
        {"discovery": {"hf_cache_dir": str(work / "no-hf-cache"), "extra_roots": [str(root)]}}
    )
    cold: list[float] = []
    warm: list[float] = []
    found = 0

    async def go() -> None:
        nonlocal found
        for i in range(cold_runs):
            disc = Discovery(settings, Database(work / f"cold-{i}.db"), env={})
            start = time.perf_counter()
            outcome = await disc.rescan()
            cold.append(time.perf_counter() - start)
            found = len(outcome.entries())
        for _ in range(rescans):
            start = time.perf_counter()
            outcome = await disc.rescan()
            warm.append(time.perf_counter() - start)
            assert not outcome.changed

    anyio.run(go)
    return cold, warm, found


def run(params: Params) -> list[Row]:
    folders, cold_runs, rescans = int(params["folders"]), int(params["cold_runs"]), int(params["rescans"])
    with tempfile.TemporaryDirectory(prefix="bench-discovery-") as tmp:
        root, work = Path(tmp) / "models", Path(tmp) / "work"
        work.mkdir()
        build(root, folders)
        cold, warm, found = _timed_rescans(root, work, cold_runs, rescans)
        read_floor = median_time(lambda: _read_floor(root), cold_runs, 1)
        stat_floor = median_time(lambda: _stat_floor(root), rescans, 2)
    if found != folders:
        raise RuntimeError(f"the scan found {found} models in {folders} folders")
    probe_ms = _probe_ms(int(params["ports"]))
    cold_s, warm_ms = statistics.median(cold), statistics.median(warm) * 1e3
    return [
        Row(
            entry=ENTRY.name,
            metric=f"cold scan, {folders} folders",
            ours=cold_s,
            baseline=read_floor,
            unit="s",
            goal=Goal(COLD_GOAL_S),
            note=f"median of {cold_runs} (max {max(cold):.3f} s), read + parse + SQLite index write; "
            "baseline = reading each config.json and safetensors header, nothing else",
        ),
        Row(
            entry=ENTRY.name,
            metric=f"no-change rescan, {folders} folders",
            ours=warm_ms,
            baseline=stat_floor * 1e3,
            unit="ms",
            goal=Goal(RESCAN_GOAL_MS),
            note=f"median of {rescans} (max {max(warm) * 1e3:.1f} ms), stat only, no file read; "
            "baseline = os.scandir + stat of every file",
        ),
        Row(
            entry=ENTRY.name,
            metric=f"probe {int(params['ports'])} closed loopback ports",
            ours=probe_ms,
            unit="ms",
            goal=Goal(PROBE_GOAL_MS),
            note="median of 3 rounds, concurrency 64, timeout 0.5 s",
        ),
    ]


def _probe_ms(ports: int) -> float:
    from vllm_mcp.config import Settings
    from vllm_mcp.discovery.endpoints import discover, targets_from_settings

    with socket.socket() as s:  # a free range: bind port 0 and probe upwards from it
        s.bind(("127.0.0.1", 0))
        base = min(int(s.getsockname()[1]), 65535 - ports)
    targets = targets_from_settings(Settings(), [f"127.0.0.1:{base}-{base + ports - 1}"])
    times = []
    for _ in range(3):
        scan = anyio.run(lambda: discover(targets, timeout=0.5, concurrency=64))
        times.append(scan.duration_ms)
    return statistics.median(times)


ENTRY = Entry(
    name="discovery",
    description="discovery scan of synthetic model folders: cold, and a rescan with nothing changed",
    run=run,
    defaults={"folders": 1000, "cold_runs": 5, "rescans": 20, "ports": 100},
)
