"""The test bed's cold start: bare ``vllm serve`` (tiny model, the flags of tests/testbed.py)
until ``/health`` answers 200. The baseline that manager-overhead entries compare against.

Runs are sequential and each engine's whole process group is stopped before the next start.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import REPO, Entry, Params, Row, Skip


def run(params: Params) -> list[Row]:
    if str(REPO) not in sys.path:  # tests.testbed holds the one definition of the flags
        sys.path.insert(0, str(REPO))
    from tests import testbed

    missing = [str(p) for p in (testbed.vllm_bin(), testbed.tiny_model() / "config.json") if not p.exists()]
    if missing:
        raise Skip(f"real-vLLM test bed missing: {', '.join(missing)} (run `make testbed`)")
    runs, lora, timeout = int(params["runs"]), bool(int(params["lora"])), float(params["timeout_s"])
    times = []
    for _ in range(max(runs, 1)):
        port = testbed.free_port()
        argv = testbed.serve_argv(testbed.tiny_model(), "tiny", port, lora=lora)
        times.append(_one_start(argv, testbed.testbed_env(), port, timeout))
    note = "runs: " + ", ".join(f"{t:.1f}" for t in times) + " s"
    return [
        Row(
            ENTRY.name,
            f"vllm serve → /health 200, median of {len(times)}",
            statistics.median(times),
            "s",
            note=note,
        ),
        Row(ENTRY.name, "vllm serve → /health 200, slowest", max(times), "s"),
    ]


def _one_start(argv: list[str], env: dict[str, str], port: int, timeout: float) -> float:
    from tests.testbed import stop_group

    with tempfile.TemporaryDirectory(prefix="bench-cold-start-") as tmp:
        log_path = Path(tmp) / "vllm.log"
        with log_path.open("wb") as log:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                cwd=tmp,
            )
        try:
            return _wait_healthy(proc, port, t0, timeout, log_path)
        finally:
            stop_group(proc)


def _wait_healthy(
    proc: subprocess.Popen[bytes], port: int, t0: float, timeout: float, log_path: Path
) -> float:
    url = f"http://127.0.0.1:{port}/health"
    with httpx.Client(timeout=2.0) as client:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"vllm serve exited with {proc.returncode}:\n{tail}")
            try:
                if client.get(url).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"vllm serve not healthy after {timeout:g} s")


ENTRY = Entry(
    name="cold-start",
    description="bare vllm serve of the test-bed tiny model until /health is 200",
    run=run,
    defaults={"runs": 3, "lora": 1, "timeout_s": 300.0},
)
