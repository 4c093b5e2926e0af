"""Start the fake vLLM from tests: a real subprocess in its own session, stopped as a group.

    with running_fake_vllm(tmp_path, "--enable-lora", served_name="tiny") as fake:
        httpx.get(fake.base_url + "/health")

``spawn_fake_vllm`` starts one without waiting (for crash/hang/slow-start tests); stop it with
``tests.testbed.stop_group(fake.proc)``. ``FAKE_VLLM_BIN`` is the ``vllm serve`` look-alike for
``engine.vllm_bin``; ``write_vllm_shim`` writes one bound to the running interpreter.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.testbed import REPO, RunningVllm, base_env, free_port, stop_group, tiny_model, wait_healthy

FAKE_VLLM_BIN = Path(__file__).resolve().parent / "vllm"


def fake_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean child environment (no FAKE_VLLM_* or VLLM_* of ours leaks in), repo importable."""
    env = base_env()
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def spawn_fake_vllm(
    log_dir: Path,
    *args: str,
    served_name: str = "tiny",
    model: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> RunningVllm:
    """Start ``python -m tests.fake_vllm`` with ``args`` (switches); do not wait for health."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"fake-vllm-{served_name}-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "tests.fake_vllm",
        "--served-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]
    if model is not None:
        argv += ["--model", model]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=fake_env(env),
            start_new_session=True,
            cwd=log_dir,
        )
    return RunningVllm(f"http://127.0.0.1:{port}", port, served_name, proc, log_path)


@contextlib.contextmanager
def running_fake_vllm(
    log_dir: Path,
    *args: str,
    served_name: str = "tiny",
    model: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[RunningVllm]:
    """A healthy fake vLLM for the duration of the block; its process group is stopped after."""
    server = spawn_fake_vllm(log_dir, *args, served_name=served_name, model=model, env=env)
    try:
        wait_healthy(server, timeout)
        yield server
    finally:
        stop_group(server.proc, grace=5.0)


def write_vllm_shim(directory: Path) -> Path:
    """Write ``directory/vllm``: the look-alike bound to this interpreter (sys.executable)."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "vllm"
    shim.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" -m tests.fake_vllm "$@"\n'
    )
    shim.chmod(0o755)
    return shim


@contextlib.contextmanager
def contract_server(kind: str, request: pytest.FixtureRequest, log_dir: Path) -> Iterator[RunningVllm]:
    """The server a contract-style test runs against: the session's real vLLM, or a fake
    started like it (served name ``tiny``, the tiny model's path as root, LoRA on, 2 slots)."""
    if kind == "real":
        yield request.getfixturevalue("real_vllm")
        return
    with running_fake_vllm(log_dir, "--enable-lora", "--max-loras", "2", model=str(tiny_model())) as fake:
        yield fake
