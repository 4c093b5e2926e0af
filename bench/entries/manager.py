"""Manager overhead on a cold load, and the MCP tool round trip over stdio.

1. ``load-model → ready`` through the daemon versus bare ``vllm serve → /health 200`` with the
   same engine flags, measured alternately in the same run (goal: ratio ≤ 1.02).
2. ``get-model-status`` round trip through a real stdio MCP client against the ready instance
   (goal: p50 ≤ 15 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio

from bench.entries.cold_start import _one_start
from bench.harness import REPO, Entry, Goal, Params, Row, Skip

KV_BYTES = 64 * 1024 * 1024


def _testbed() -> ModuleType:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests import testbed

    missing = [str(p) for p in (testbed.vllm_bin(), testbed.tiny_model() / "config.json") if not p.exists()]
    if missing:
        raise Skip(f"real-vLLM test bed missing: {', '.join(missing)} (run `make testbed`)")
    return testbed


@contextlib.contextmanager
def _daemon(state_dir: Path) -> Iterator[dict[str, str]]:
    testbed = _testbed()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env.update(
        XDG_CONFIG_HOME=str(state_dir.parent / "xdg"),
        VLLM_MCP__PATHS__STATE_DIR=str(state_dir),
        VLLM_MCP__ENGINE__VLLM_BIN=str(testbed.vllm_bin()),
        VLLM_MCP__MODELS__ALLOWED_ROOTS=json.dumps([str(testbed.testbed_dir())]),
    )
    cli = [sys.executable, "-m", "vllm_mcp"]
    subprocess.run([*cli, "daemon", "start"], env=env, check=True, capture_output=True)
    try:
        yield env
    finally:
        subprocess.run([*cli, "daemon", "stop", "--timeout", "90"], env=env, check=False, capture_output=True)


async def _managed_load(env: dict[str, str], lora: bool) -> float:
    from vllm_mcp.api.instances import LoadRequest
    from vllm_mcp.client import DaemonClient
    from vllm_mcp.client.models_api import ModelsApi
    from vllm_mcp.config import load_settings

    testbed = _testbed()
    request = LoadRequest(
        model=str(testbed.tiny_model()),
        served_name="tiny",
        enforce_eager=True,
        kv_cache_memory_bytes=KV_BYTES,
        max_model_len=2048,
        enable_lora=lora or None,
        max_lora_rank=8 if lora else None,
        max_loras=2 if lora else None,
    )
    async with DaemonClient(load_settings(env=env).settings) as daemon:
        api = ModelsApi(daemon)
        t0 = time.perf_counter()
        view = await api.load(request)
        while view.state.value == "starting":
            view = await api.wait(view.name, 5.0)
        took = time.perf_counter() - t0
        if view.state.value != "ready":
            raise RuntimeError(f"managed load ended {view.state.value}: {view.last_error}")
        return took


async def _unload(env: dict[str, str]) -> None:
    from vllm_mcp.client import DaemonClient
    from vllm_mcp.client.models_api import ModelsApi
    from vllm_mcp.config import load_settings

    async with DaemonClient(load_settings(env=env).settings) as daemon:
        await ModelsApi(daemon).unload("tiny")


async def _mcp_round_trips(env: dict[str, str], calls: int) -> list[float]:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "vllm_mcp", "mcp", "model-manager"], env=env
    )
    times = []
    async with Client(params) as client:
        await client.call_tool("get-model-status", {"name": "tiny"})  # warm: daemon connection
        for _ in range(calls):
            t0 = time.perf_counter()
            result = await client.call_tool("get-model-status", {"name": "tiny"})
            times.append(time.perf_counter() - t0)
            if result.is_error:
                raise RuntimeError(f"get-model-status failed: {result.content}")
    return times


def run(params: Params) -> list[Row]:
    testbed = _testbed()
    runs, lora = int(params["runs"]), bool(int(params["lora"]))
    bare, managed = [], []
    with tempfile.TemporaryDirectory(prefix="bench-manager-") as tmp, _daemon(Path(tmp) / "state") as env:
        for i in range(max(runs, 1)):
            port = testbed.free_port()
            bare.append(
                _one_start(
                    testbed.serve_argv(testbed.tiny_model(), "tiny", port, lora=lora),
                    testbed.testbed_env(),
                    port,
                    float(params["timeout_s"]),
                )
            )
            managed.append(anyio.run(_managed_load, env, lora))
            if i < runs - 1:
                anyio.run(_unload, env)
        trips = anyio.run(_mcp_round_trips, env, int(params["mcp_calls"]))
        anyio.run(_unload, env)
    ratio = statistics.median(managed) / statistics.median(bare)
    trips_ms = sorted(t * 1000 for t in trips)
    return [
        Row(
            ENTRY.name,
            "cold load: load-model → ready, median",
            statistics.median(managed),
            "s",
            baseline=statistics.median(bare),
            note="baseline: bare vllm serve → /health 200; runs "
            + ", ".join(f"{m:.1f}/{b:.1f}" for m, b in zip(managed, bare, strict=True)),
        ),
        Row(ENTRY.name, "cold load overhead ratio (managed / bare)", ratio, "x", goal=Goal(1.02)),
        Row(
            ENTRY.name,
            f"get-model-status over stdio MCP, p50 of {len(trips)}",
            statistics.median(trips_ms),
            "ms",
            goal=Goal(15.0),
            note=f"p95 {trips_ms[int(len(trips_ms) * 0.95) - 1]:.1f} ms",
        ),
    ]


ENTRY = Entry(
    name="manager",
    description="daemon-managed cold load vs bare vllm serve; MCP get-model-status round trip",
    run=run,
    defaults={"runs": 2, "lora": 1, "timeout_s": 300.0, "mcp_calls": 50},
)
