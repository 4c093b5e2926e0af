"""The fake vLLM's fault switches, its `vllm serve` shim and its process-group behaviour.

Its normal behaviour (endpoints, bodies, metrics) is held to real vLLM by test_contract.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.fake_vllm.launch import (
    FAKE_VLLM_BIN,
    fake_env,
    running_fake_vllm,
    spawn_fake_vllm,
    write_vllm_shim,
)
from tests.testbed import RunningVllm, free_port, stop_group, wait_healthy

pytestmark = pytest.mark.timeout(60)


@contextlib.contextmanager
def spawned(tmp_path: Path, *args: str) -> Iterator[RunningVllm]:
    server = spawn_fake_vllm(tmp_path, *args)
    try:
        yield server
    finally:
        stop_group(server.proc, grace=2.0)


def health_status(server: RunningVllm) -> int | None:
    """The /health status, or None when nothing answers."""
    try:
        return httpx.get(server.base_url + "/health", timeout=2).status_code
    except httpx.TransportError:
        return None


def wait_for_log(server: RunningVllm, needle: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in server.log():
        assert time.monotonic() < deadline, f"{needle!r} never logged:\n{server.log()}"
        time.sleep(0.05)


def completion(server: RunningVllm, **body: object) -> httpx.Response:
    payload = {"model": server.served_name, "prompt": "hello world", "max_tokens": 4, **body}
    return httpx.post(server.base_url + "/v1/completions", json=payload, timeout=10)


# -- start-up --------------------------------------------------------------------------------------


def test_start_delay_refuses_connections_until_loaded_and_logs_like_vllm(tmp_path: Path) -> None:
    started = time.monotonic()
    with spawned(tmp_path, "--start-delay", "1.5") as fake:
        wait_for_log(fake, "Starting to load model")
        assert health_status(fake) is None  # like real vLLM: nothing listens while loading
        wait_healthy(fake, 20)
        assert time.monotonic() - started >= 1.5
        log = fake.log()
    assert "CPU KV cache size: 65,536 tokens, Maximum concurrency for 2,048 tokens per request" in log
    assert "Application startup complete." in log
    assert f"Starting vLLM server on http://127.0.0.1:{fake.port}" in log


def test_crash_at_start_logs_the_failure_and_exits_with_the_code_before_listening(tmp_path: Path) -> None:
    with spawned(tmp_path, "--crash-at-start", "--exit-code", "3") as fake:
        assert fake.proc.wait(15) == 3
        assert health_status(fake) is None
    assert "RuntimeError: Engine core initialization failed" in fake.log()


def test_hang_listens_but_never_becomes_healthy(tmp_path: Path) -> None:
    with spawned(tmp_path, "--hang") as fake:
        wait_for_log(fake, "Application startup complete.")
        for _ in range(3):
            assert health_status(fake) == 503
            time.sleep(0.2)
        assert fake.proc.poll() is None


# -- signals and the process group ---------------------------------------------------------------


def test_sigterm_stops_it_cleanly_and_takes_the_engine_core_along(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path, "--spawn-engine-core") as fake:
        (child,) = psutil.Process(fake.proc.pid).children()
        os.kill(fake.proc.pid, signal.SIGTERM)  # the leader only, not the group
        assert fake.proc.wait(10) == 0
        child.wait(5)  # raises if the engine-core child outlived a clean shutdown
    assert "Shutting down" in fake.log()


def test_ignore_sigterm_survives_sigterm_until_sigkill(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path, "--ignore-sigterm") as fake:
        os.killpg(fake.proc.pid, signal.SIGTERM)
        time.sleep(1.0)
        assert fake.proc.poll() is None
        assert health_status(fake) == 200
        os.killpg(fake.proc.pid, signal.SIGKILL)
        assert fake.proc.wait(10) == -signal.SIGKILL
    assert "ignoring SIGTERM" in fake.log()


def test_sigkill_of_the_leader_orphans_the_engine_core_like_real_vllm(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path, "--spawn-engine-core") as fake:
        (child,) = psutil.Process(fake.proc.pid).children()
        assert "VLLM::EngineCore" in child.cmdline()
        os.kill(fake.proc.pid, signal.SIGKILL)
        fake.proc.wait(10)
        time.sleep(0.3)
        assert child.is_running()  # still alive: only a group kill cleans up
        assert os.getpgid(child.pid) == fake.proc.pid
        os.killpg(fake.proc.pid, signal.SIGKILL)
        child.wait(10)


# -- inference faults -----------------------------------------------------------------------------


def read_stream(server: RunningVllm, chunks: list[str]) -> None:
    payload = {"model": "tiny", "prompt": "hello", "max_tokens": 10, "stream": True}
    with httpx.stream("POST", server.base_url + "/v1/completions", json=payload, timeout=10) as resp:
        assert resp.status_code == 200
        chunks.extend(line for line in resp.iter_lines() if line.startswith("data:"))


def test_crash_mid_stream_dies_hard_after_a_few_chunks(tmp_path: Path) -> None:
    chunks: list[str] = []
    with running_fake_vllm(tmp_path, "--crash-mid-stream") as fake:
        with pytest.raises(httpx.TransportError):
            read_stream(fake, chunks)
        assert fake.proc.wait(10) == -signal.SIGKILL
    assert 1 <= len(chunks) < 10
    assert "data: [DONE]" not in chunks


def test_http_500_fails_every_inference_request_with_vllms_error_body(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path, "--http-500") as fake:
        resp = completion(fake)
        assert resp.status_code == 500
        assert resp.json()["error"]["type"] == "InternalServerError"
        chat = httpx.post(
            fake.base_url + "/v1/chat/completions",
            json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert chat.status_code == 500
        assert health_status(fake) == 200  # only inference routes fail


def test_fail_rate_fails_some_requests_and_not_others(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path, "--fail-rate", "0.5") as fake:
        statuses = {completion(fake).status_code for _ in range(20)}
    assert statuses == {200, 500}


# -- the `vllm serve` look-alike --------------------------------------------------------------------


def serve_argv(binary: Path, port: int, model: str = "/models/tiny-llama") -> list[str]:
    return [
        str(binary),
        "serve",
        model,
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        "--dtype",
        "float32",
        "--max-model-len",
        "1024",
        "--kv-cache-memory-bytes",
        "67108864",
    ]


@pytest.mark.parametrize("bound", [False, True], ids=["committed-shim", "sys-executable-shim"])
def test_vllm_shim_serves_like_vllm_serve(tmp_path: Path, bound: bool) -> None:
    binary = write_vllm_shim(tmp_path / "bin") if bound else FAKE_VLLM_BIN
    port = free_port()
    log_path = tmp_path / "shim.log"
    with log_path.open("wb") as log:
        env = {k: v for k, v in fake_env().items() if k != "PYTHONPATH"}  # the shim sets it itself
        proc = subprocess.Popen(
            serve_argv(binary, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=tmp_path,
        )
    server = RunningVllm(f"http://127.0.0.1:{port}", port, "tiny", proc, log_path)
    try:
        wait_healthy(server, 30)
        (card,) = httpx.get(server.base_url + "/v1/models", timeout=5).json()["data"]
        assert (card["id"], card["root"], card["max_model_len"]) == ("tiny", "/models/tiny-llama", 1024)
    finally:
        stop_group(proc, grace=5.0)
    assert "CPU KV cache size: 131,072 tokens" in log_path.read_text()


def test_vllm_shim_takes_fault_switches_from_env(tmp_path: Path) -> None:
    env = fake_env({"FAKE_VLLM_CRASH_AT_START": "1", "FAKE_VLLM_EXIT_CODE": "4"})
    out = subprocess.run(
        serve_argv(FAKE_VLLM_BIN, free_port()), env=env, capture_output=True, timeout=30, check=False
    )
    assert out.returncode == 4
    assert b"Engine core initialization failed" in out.stdout


def test_vllm_shim_answers_version() -> None:
    out = subprocess.run([str(FAKE_VLLM_BIN), "--version"], capture_output=True, timeout=30, check=True)
    assert out.stdout.strip() == b"0.32.0"


def test_api_key_guards_v1_routes_only(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path, env={"VLLM_API_KEY": "sekrit"}) as fake:
        assert httpx.get(fake.base_url + "/v1/models", timeout=5).json() == {"error": "Unauthorized"}
        headers = {"Authorization": "Bearer sekrit"}
        assert httpx.get(fake.base_url + "/v1/models", headers=headers, timeout=5).status_code == 200
        assert httpx.get(fake.base_url + "/version", timeout=5).status_code == 200
        tokenize = httpx.post(fake.base_url + "/tokenize", json={"prompt": "hi"}, timeout=5)
        assert tokenize.status_code == 200  # real vLLM leaves /tokenize open too


def test_sleep_and_wake_log_vllms_lines(tmp_path: Path) -> None:
    with running_fake_vllm(tmp_path) as fake:
        httpx.post(fake.base_url + "/sleep", params={"level": 1}, timeout=5).raise_for_status()
        httpx.post(fake.base_url + "/wake_up", timeout=5).raise_for_status()
        wait_for_log(fake, "seconds to wake up tags")
    assert "seconds to fall asleep." in fake.log()
