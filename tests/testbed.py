"""The real-vLLM test bed for tests and benchmarks: find it, start `vllm serve`, stop it.

``make test`` sets ``VLLM_MCP_REQUIRE_VLLM=1``: then a missing test bed *fails* the run instead of
skipping the real tier. Developers may run ``pytest -m "not vllm"`` for speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
KV_BYTES = 64 * 1024 * 1024  # FACTS.md: a KV size is required on this sandbox


def testbed_dir() -> Path:
    return Path(os.environ.get("VLLM_MCP_TESTBED", REPO / ".testbed"))


def vllm_bin() -> Path:
    return Path(os.environ.get("VLLM_MCP_VLLM_BIN", REPO / ".venv-vllm" / "bin" / "vllm"))


def tiny_model() -> Path:
    return testbed_dir() / "models" / "tiny-llama"


def tiny_lora() -> Path:
    return testbed_dir() / "loras" / "tiny-lora"


def require_testbed() -> None:
    """Skip (or, under ``make test``, fail) when the vLLM venv or the tiny model is missing."""
    missing = [str(p) for p in (vllm_bin(), tiny_model() / "config.json") if not p.exists()]
    if not missing:
        return
    msg = f"real-vLLM test bed missing: {', '.join(missing)} (run `make testbed`)"
    if os.environ.get("VLLM_MCP_REQUIRE_VLLM") == "1":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    """The few parent variables a child needs; nothing of ours (VLLM_PORT & co.) leaks in."""
    return {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}


def testbed_env(**extra: str) -> dict[str, str]:
    """A clean child environment for real vLLM (dev endpoints and runtime LoRA on)."""
    env = base_env()
    env.update(
        VLLM_SERVER_DEV_MODE="1",
        VLLM_ALLOW_RUNTIME_LORA_UPDATING="True",
        HF_HUB_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_HOST_IP="127.0.0.1",
    )
    env.update(extra)
    return env


@dataclass
class RunningVllm:
    base_url: str
    port: int
    served_name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def serve_argv(model: Path, served_name: str, port: int, *extra: str, lora: bool = True) -> list[str]:
    argv = [
        str(vllm_bin()),
        "serve",
        str(model),
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        "--max-model-len",
        "2048",
    ]
    if not any(a.startswith("--kv-cache-memory-bytes") for a in extra):
        argv += ["--kv-cache-memory-bytes", str(KV_BYTES)]
    if lora:
        argv += ["--enable-lora", "--max-lora-rank", "8", "--max-loras", "2"]
    return argv + list(extra)


@contextlib.contextmanager
def running_vllm(
    log_dir: Path,
    *extra: str,
    model: Path | None = None,
    served_name: str = "tiny",
    lora: bool = True,
    timeout: float = 240.0,
) -> Iterator[RunningVllm]:
    """Start a real `vllm serve` in its own session; stop its whole process group after."""
    require_testbed()
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"vllm-{served_name}-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            serve_argv(model or tiny_model(), served_name, port, *extra, lora=lora),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=testbed_env(),
            start_new_session=True,
            cwd=log_dir,
        )
    server = RunningVllm(f"http://127.0.0.1:{port}", port, served_name, proc, log_path)
    try:
        wait_healthy(server, timeout)
        yield server
    finally:
        stop_group(proc)


def wait_healthy(server: RunningVllm, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"vLLM exited with {server.proc.returncode}:\n{server.log()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/health", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"vLLM not healthy after {timeout} s:\n{server.log()[-3000:]}")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    # The group may outlive its leader (EngineCore, Worker): make sure it is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
