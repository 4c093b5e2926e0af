"""Capture real vLLM ``/metrics`` pages as test fixtures — idle, under load, with a LoRA, asleep.

The parser in ``vllm_mcp.engine.metrics`` is tested against these pages (prometheus-client's
parser is the oracle), so they must come from a real vLLM, not be written by hand.

Against the test bed (starts the tiny model with the flags of ``tests/testbed.py``, stops it):

    .venv/bin/python scripts/capture_metrics.py --serve

Against a vLLM you started yourself (it needs ``VLLM_SERVER_DEV_MODE=1`` for the asleep page,
``--enable-lora`` + ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` for the LoRA page):

    .venv/bin/python scripts/capture_metrics.py --base-url http://127.0.0.1:8200 --model tiny \\
        --lora-path .testbed/loras/tiny-lora

Writes ``<out>/vllm-<version>-{idle,loaded,lora,asleep}.txt`` (default out:
``tests/fixtures/metrics``). The steps, in order:

1. idle   — a few finished requests (one prompt twice, so the prefix cache has a hit), then a
            scrape with nothing in flight: counters and histograms non-zero, running == 0.
2. loaded — ``--streams`` concurrent streaming completions (``ignore_eos``, long outputs); the
            scrape is retried until the page shows ``num_requests_running > 0``.
3. lora   — the adapter is loaded at runtime and streams run against it; the scrape is taken
            while they run (``lora_requests_info`` names the running adapter). Unloaded after.
4. asleep — ``/sleep?level=1``, scrape (``engine_sleep_state{sleep_state="weights_offloaded"}``
            is 1), then ``/wake_up``.

A step whose condition is never met fails the script (exit 1) rather than writing a page that
does not show what its name says.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "metrics"
PROMPTS = [
    "the model loads weights into memory and serves tokens",
    "the scheduler decides what runs and the agent waits for the answer",
    "tokens",
    "sleep and wake the engine while the gateway holds a lease on the model " * 6,
]


def sample_value(page: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(page):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def label_values(page: str, name: str, label: str) -> list[str]:
    """The values of ``label`` on every sample called ``name``."""
    return [
        s.labels.get(label, "")
        for family in text_string_to_metric_families(page)
        for s in family.samples
        if s.name == name
    ]


async def complete(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> None:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0}
    resp = await client.post("/v1/completions", json=body)
    resp.raise_for_status()


async def stream(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> None:
    """A streaming completion that always produces ``max_tokens`` (the tiny model rarely stops)."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "stream": True,
        "ignore_eos": True,
        "temperature": 0.8,
    }
    async with client.stream("POST", "/v1/completions", json=body) as resp:
        resp.raise_for_status()
        async for _ in resp.aiter_lines():
            pass


async def scrape_until(
    client: httpx.AsyncClient, ok: Callable[[str], bool], what: str, tries: int = 200
) -> str:
    for _ in range(tries):
        page = (await client.get("/metrics")).text
        if ok(page):
            return page
        await asyncio.sleep(0.05)
    raise SystemExit(f"capture failed: never saw {what} on /metrics")


async def under_load(
    client: httpx.AsyncClient,
    model: str,
    streams: int,
    max_tokens: int,
    *,
    ok: Callable[[str], bool],
    what: str,
) -> str:
    """Start ``streams`` long streams, scrape while they run, then let them finish."""
    tasks = [
        asyncio.create_task(stream(client, model, PROMPTS[i % len(PROMPTS)], max_tokens))
        for i in range(streams)
    ]
    try:
        # Let a couple of decode steps pass so the token counters and ITL buckets move too.
        await scrape_until(client, lambda p: sample_value(p, "vllm:num_requests_running") > 0, what)
        await asyncio.sleep(0.5)
        return await scrape_until(client, ok, what)
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)


def write(out: Path, version: str, kind: str, page: str) -> None:
    path = out / f"vllm-{version}-{kind}.txt"
    path.write_text(page)
    print(
        f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} "
        f"({len(page.encode())} bytes, {page.count(chr(10))} lines)"
    )


async def capture(base_url: str, model: str, lora_path: Path | None, out: Path, streams: int) -> None:
    timeout = httpx.Timeout(120.0, connect=5.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        version = (await client.get("/version")).json()["version"]
        running = lambda p: sample_value(p, "vllm:num_requests_running") > 0  # noqa: E731

        # 1. idle: finished requests only; PROMPTS[0] twice gives a prefix-cache hit.
        for prompt in [PROMPTS[0], *PROMPTS]:
            await complete(client, model, prompt, 16)
        write(out, version, "idle", await scrape_until(client, lambda p: not running(p), "an idle engine"))

        # 2. loaded
        page = await under_load(client, model, streams, 1024, ok=running, what="requests running under load")
        write(out, version, "loaded", page)

        # 3. lora
        if lora_path is not None:
            write(out, version, "lora", await with_lora(client, lora_path, streams))

        # 4. asleep
        write(out, version, "asleep", await asleep(client))


async def with_lora(client: httpx.AsyncClient, lora_path: Path, streams: int) -> str:
    name = "tiny-lora"
    resp = await client.post("/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(lora_path)})
    if resp.status_code not in (200, 400):  # 400: already loaded by an earlier run
        raise SystemExit(f"capture failed: loading the LoRA gave {resp.status_code}: {resp.text}")
    try:

        def lora_running(p: str) -> bool:
            running = label_values(p, "vllm:lora_requests_info", "running_lora_adapters")
            return any(name in r.split(",") for r in running)

        return await under_load(client, name, streams, 512, ok=lora_running, what="a running LoRA adapter")
    finally:
        await client.post("/v1/unload_lora_adapter", json={"lora_name": name})


async def asleep(client: httpx.AsyncClient) -> str:
    resp = await client.post("/sleep", params={"level": 1})
    if resp.status_code != 200:
        raise SystemExit(f"capture failed: /sleep gave {resp.status_code} (needs VLLM_SERVER_DEV_MODE=1)")
    try:
        return await scrape_until(
            client,
            lambda p: sample_value(p, "vllm:engine_sleep_state", sleep_state="weights_offloaded") == 1,
            "engine_sleep_state weights_offloaded == 1",
        )
    finally:
        await client.post("/wake_up")


def run_with_testbed(fn: Callable[[str, str, Path], Awaitable[None]]) -> None:
    sys.path.insert(0, str(REPO))
    from tests.testbed import running_vllm, tiny_lora

    with tempfile.TemporaryDirectory(prefix="capture-metrics-") as tmp, running_vllm(Path(tmp)) as server:
        asyncio.run(fn(server.base_url, server.served_name, tiny_lora()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--serve", action="store_true", help="start the test-bed vLLM for the capture")
    where.add_argument("--base-url", help="a running vLLM, e.g. http://127.0.0.1:8200")
    parser.add_argument("--model", default="tiny", help="its served model name (with --base-url)")
    parser.add_argument("--lora-path", type=Path, help="a LoRA adapter dir (with --base-url)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--streams", type=int, default=12, help="concurrent streams for the loaded pages")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    async def go(base_url: str, model: str, lora: Path | None) -> None:
        await capture(base_url, model, lora, args.out, args.streams)

    with contextlib.suppress(KeyboardInterrupt):
        if args.serve:
            run_with_testbed(go)
        else:
            asyncio.run(go(args.base_url, args.model, args.lora_path))
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
