"""Command line of the fake vLLM: its own switches, or a `vllm serve` look-alike.

    python -m tests.fake_vllm --port N --served-name X [--start-delay S] [--crash-at-start] …
    python -m tests.fake_vllm serve <model> --served-model-name X --host H --port P [vLLM flags]

In the ``serve`` form unknown vLLM flags are ignored, and the fault switches come from the
``FAKE_VLLM_*`` environment variables (the daemon passes ``engine.extra_env`` to its children);
in both forms those variables are the defaults of the switches.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

import uvicorn

from tests.fake_vllm import logs
from tests.fake_vllm.app import build_app
from tests.fake_vllm.engine import VERSION, FakeConfig, FakeEngine, Faults

ENV_SWITCHES = {
    "start_delay": "FAKE_VLLM_START_DELAY",
    "crash_at_start": "FAKE_VLLM_CRASH_AT_START",
    "exit_code": "FAKE_VLLM_EXIT_CODE",
    "hang": "FAKE_VLLM_HANG",
    "ignore_sigterm": "FAKE_VLLM_IGNORE_SIGTERM",
    "crash_mid_stream": "FAKE_VLLM_CRASH_MID_STREAM",
    "http_500": "FAKE_VLLM_HTTP_500",
    "fail_rate": "FAKE_VLLM_FAIL_RATE",
    "token_delay": "FAKE_VLLM_TOKEN_DELAY",
    "spawn_engine_core": "FAKE_VLLM_SPAWN_ENGINE_CORE",
}
_TRUE = {"1", "true", "yes", "on"}


def _env_flag(name: str) -> bool:
    return os.environ.get(ENV_SWITCHES[name], "").strip().lower() in _TRUE


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(ENV_SWITCHES[name], "").strip()
    return float(raw) if raw else default


def _add_fault_switches(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("fault injection (defaults from FAKE_VLLM_* env vars)")
    g.add_argument(
        "--start-delay",
        type=float,
        default=_env_float("start_delay", 0.0),
        help="load for S seconds before listening (nothing answers until then)",
    )
    g.add_argument(
        "--crash-at-start",
        action="store_true",
        default=_env_flag("crash_at_start"),
        help="print a start failure to the log and exit non-zero before listening",
    )
    g.add_argument("--exit-code", type=int, default=int(_env_float("exit_code", 1)))
    g.add_argument(
        "--hang",
        action="store_true",
        default=_env_flag("hang"),
        help="listen, but /health answers 503 forever",
    )
    g.add_argument("--ignore-sigterm", action="store_true", default=_env_flag("ignore_sigterm"))
    g.add_argument(
        "--crash-mid-stream",
        action="store_true",
        default=_env_flag("crash_mid_stream"),
        help="SIGKILL itself after a few SSE chunks",
    )
    g.add_argument(
        "--http-500",
        action="store_true",
        default=_env_flag("http_500"),
        help="every inference request answers HTTP 500 (same as --fail-rate 1)",
    )
    g.add_argument(
        "--fail-rate",
        type=float,
        default=_env_float("fail_rate", 0.0),
        help="fraction of inference requests answered with HTTP 500 (seeded)",
    )
    g.add_argument(
        "--token-delay",
        type=float,
        default=_env_float("token_delay", 0.0),
        help="seconds between generated tokens (slow streams)",
    )
    g.add_argument(
        "--spawn-engine-core",
        action="store_true",
        default=_env_flag("spawn_engine_core"),
        help="start a child in the same process group, like vLLM's EngineCore",
    )


def _add_engine_flags(p: argparse.ArgumentParser, *, vllm_style: bool) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--kv-cache-tokens", type=int, default=65536)
    p.add_argument("--kv-cache-memory-bytes", type=int, default=None)
    p.add_argument("--enable-lora", action="store_true")
    p.add_argument("--max-loras", type=int, default=1)
    p.add_argument("--api-key", default=os.environ.get("VLLM_API_KEY"))  # real vLLM reads it too
    if vllm_style:
        p.add_argument("model")
        p.add_argument("--served-model-name", nargs="+", default=None)
    else:
        p.add_argument("--served-name", default="fake")
        p.add_argument("--model", default=None)


def parse(argv: Sequence[str]) -> FakeConfig:
    vllm_style = bool(argv) and argv[0] == "serve"
    p = argparse.ArgumentParser(prog="vllm serve" if vllm_style else "python -m tests.fake_vllm")
    _add_engine_flags(p, vllm_style=vllm_style)
    _add_fault_switches(p)
    if vllm_style:
        ns, _ignored = p.parse_known_args(argv[1:])  # other vLLM flags: accepted, ignored
        served = ns.served_model_name[0] if ns.served_model_name else ns.model
        model = ns.model
    else:
        ns = p.parse_args(argv)
        served = ns.served_name
        model = ns.model or f"/fake/models/{served}"
    kv_tokens = ns.kv_cache_tokens
    if ns.kv_cache_memory_bytes:  # the tiny model: 64 MiB → 131,072 tokens on real vLLM
        kv_tokens = ns.kv_cache_memory_bytes // 512
    faults = Faults(
        start_delay=ns.start_delay,
        crash_at_start=ns.crash_at_start,
        exit_code=ns.exit_code,
        hang=ns.hang,
        ignore_sigterm=ns.ignore_sigterm,
        crash_mid_stream=ns.crash_mid_stream,
        fail_rate=1.0 if ns.http_500 else ns.fail_rate,
        token_delay=ns.token_delay,
        spawn_engine_core=ns.spawn_engine_core,
    )
    return FakeConfig(
        model=model,
        served_name=served,
        host=ns.host,
        port=ns.port,
        max_model_len=ns.max_model_len,
        kv_cache_tokens=kv_tokens,
        enable_lora=ns.enable_lora,
        max_loras=ns.max_loras,
        api_key=ns.api_key,
        faults=faults,
    )


class _Server(uvicorn.Server):
    """uvicorn, but able to ignore SIGTERM (a stuck engine) for stop-escalation tests."""

    ignore_sigterm = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.ignore_sigterm and sig == signal.SIGTERM:
            logs.vlog("ignoring SIGTERM (fake fault --ignore-sigterm)", level="WARNING")
            return
        super().handle_exit(sig, frame)


def _spawn_engine_core() -> subprocess.Popen[bytes]:
    """A child in our process group that outlives a SIGKILL of the parent, like EngineCore."""
    code = "import time\nwhile True: time.sleep(1)"
    return subprocess.Popen([sys.executable, "-c", code, "VLLM::EngineCore"], stdin=subprocess.DEVNULL)


def _exit_on_sigterm(sig: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # runs the ``finally`` below: the engine-core child goes too


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-v"]):
        print(VERSION)  # `vllm --version`
        return 0
    cfg = parse(args)
    faults = cfg.faults
    # uvicorn swaps in its own handler while serving and, after a graceful stop, re-raises the
    # signal into this one; SIG_IGN keeps an --ignore-sigterm fake deaf while it is loading.
    signal.signal(signal.SIGTERM, signal.SIG_IGN if faults.ignore_sigterm else _exit_on_sigterm)
    started = time.monotonic()
    logs.startup_banner(cfg.model, cfg.served_name, cfg.host, cfg.port, VERSION)
    child = _spawn_engine_core() if faults.spawn_engine_core else None
    try:
        if faults.start_delay:
            logs.vlog(f"Starting to load model {cfg.model}...", proc="Worker", src="cpu_model_runner.py:68")
            time.sleep(faults.start_delay)
        if faults.crash_at_start:
            logs.start_failure(faults.exit_code)
            return faults.exit_code
        logs.engine_ready(cfg.kv_cache_tokens, cfg.max_model_len, time.monotonic() - started)
        logs.vlog(f"Starting vLLM server on http://{cfg.host}:{cfg.port}", src="entry.py:140")
        server = _Server(
            uvicorn.Config(
                build_app(FakeEngine(cfg)),
                host=cfg.host,
                port=cfg.port,
                log_level="info",
                timeout_keep_alive=5,
                lifespan="on",
            )
        )
        server.ignore_sigterm = faults.ignore_sigterm
        asyncio.run(server.serve())
        return 0 if server.started else 1
    finally:
        if child is not None:  # a clean exit takes the engine core down with it
            child.terminate()
            child.wait(5)
