"""Log lines shaped like vLLM 0.32's, so log parsers can be tested against the fake.

Real shape: ``(APIServer pid=5742) INFO 11-25 21:40:05 [entry.py:140] Starting vLLM server on …``.
uvicorn's own lines (``INFO:     Application startup complete.``) come from uvicorn itself, as in
real vLLM. Everything goes to stdout, flushed, because the supervisor captures stdout+stderr.
"""

from __future__ import annotations

import os
import sys
import time


def vlog(msg: str, *, proc: str = "APIServer", level: str = "INFO", src: str = "api_server.py:1") -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    sys.stdout.write(f"({proc} pid={os.getpid()}) {level} {stamp} [{src}] {msg}\n")
    sys.stdout.flush()


def startup_banner(model: str, served_name: str, host: str, port: int, version: str) -> None:
    vlog(f"vLLM API server version {version}", src="api_utils.py:347")
    args = {
        "model_tag": model,
        "host": host,
        "port": port,
        "model": model,
        "served_model_name": [served_name],
    }
    vlog(f"non-default args: {args}", src="api_utils.py:286")
    vlog(
        f"Initializing a V1 LLM engine (v{version}) with config: model='{model}', "
        f"served_model_name={served_name}, device_config=cpu (fake)",
        proc="EngineCore",
        src="core.py:133",
    )


def engine_ready(kv_tokens: int, max_model_len: int, load_s: float) -> None:
    """The lines a log parser looks for between "loading" and "serving"."""
    vlog("Loading weights took 0.01 seconds", proc="Worker", src="default_loader.py:501")
    vlog(
        f"Model loading took 0.0022 GiB and {load_s:.6f} seconds",
        proc="Worker",
        src="gpu_model_runner.py:4262",
    )
    concurrency = kv_tokens / max(1, max_model_len)
    vlog(
        f"CPU KV cache size: {kv_tokens:,} tokens, Maximum concurrency for {max_model_len:,} "
        f"tokens per request: {concurrency:.2f}x",
        proc="EngineCore",
        src="kv_cache_utils.py:2327",
    )
    vlog(
        "init engine (profile, create kv cache, warmup model) took 0.19 s",
        proc="EngineCore",
        src="core.py:402",
    )


def start_failure(exit_code: int) -> None:
    """What a failed start prints: the root cause, then vLLM's summary line."""
    vlog("EngineCore failed to start.", proc="EngineCore", level="ERROR", src="core.py:1105")
    sys.stdout.write(
        "ValueError: fake vLLM: injected start failure (--crash-at-start)\n"
        "RuntimeError: Engine core initialization failed. See root cause above. "
        f"Failed core proc(s): {{'EngineCore': {exit_code}}}\n"
    )
    sys.stdout.flush()
