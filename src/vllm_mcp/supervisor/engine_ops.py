"""The HTTP side of the lifecycle: readiness, sleep and wake, each verified, through ``VllmClient``.

These functions only talk to one vLLM and report; the owner task decides what a result means
for the state. They run inside the owner task (sleep, wake: milliseconds on vLLM) or in a
helper task that reports back (readiness: seconds to minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from vllm_mcp.engine.client import VllmClient
from vllm_mcp.engine.metrics import parse_metrics
from vllm_mcp.errors import EngineError, UpstreamError

READY_POLL_S = 0.25
VERIFY_TIMEOUT_S = 5.0  # how long sleep/wake may take to show on /is_sleeping and the gauge
VERIFY_POLL_S = 0.1
PROGRESS_EVERY_S = 5.0

#: gauge label → the sleep level it means (``awake`` = not sleeping).
GAUGE_LEVEL = {"awake": 0, "weights_offloaded": 1, "discard_all": 2}


def sleep_gauge(metrics_text: str) -> str | None:
    """The ``sleep_state`` label whose ``vllm:engine_sleep_state`` is 1, or None (no gauge, or
    level 0 where all three are 0)."""
    page = parse_metrics(metrics_text, at=time.time())
    return next((m.sleep_state for m in page.models.values() if m.sleep_state), None)


async def probe_ready(
    client: VllmClient,
    served_name: str,
    *,
    deadline: float,
    warmup: bool,
    progress: Callable[[str], None],
) -> bool:
    """Until ``/health`` is 200 and ``/v1/models`` lists ``served_name`` (then one 1-token
    warm-up if asked). False when ``deadline`` (monotonic) passes first. Warm-up errors raise."""
    next_note = time.monotonic() + PROGRESS_EVERY_S
    started = time.monotonic()
    while time.monotonic() < deadline:
        if await client.health(timeout=2.0) and await _lists(client, served_name):
            if warmup:
                await client.completion(
                    served_name, "Hi", max_tokens=1, timeout=max(deadline - time.monotonic(), 1)
                )
            return True
        if time.monotonic() >= next_note:
            progress(f"waiting for vLLM to become ready ({time.monotonic() - started:.0f} s)")
            next_note += PROGRESS_EVERY_S
        await asyncio.sleep(READY_POLL_S)
    return False


async def _lists(client: VllmClient, served_name: str) -> bool:
    try:
        return any(card.id == served_name for card in await client.models(timeout=2.0))
    except UpstreamError:
        return False


async def sleep_verified(client: VllmClient, level: int) -> str:
    """``/sleep?level=…``, then wait until ``/is_sleeping`` is true and the gauge agrees.

    Returns a note for the transition record. Raises ``EngineError`` if vLLM says it is not
    asleep after ``VERIFY_TIMEOUT_S``; a gauge that never shows the level is noted, not fatal
    (``/is_sleeping`` is the engine's own answer; the gauge lags by a stats interval).
    """
    began = time.monotonic()
    await client.sleep(level)
    if not await _until(client.is_sleeping, want=True):
        raise EngineError(
            f"vLLM accepted sleep level {level} but /is_sleeping stayed false",
            hint="Read the engine log; wake it or unload it.",
        )
    expected = "weights_offloaded" if level == 1 else "discard_all"
    gauge = await _gauge_until(client, expected)
    took = time.monotonic() - began
    return f"level {level} in {took:.2f} s" + ("" if gauge == expected else f"; gauge shows {gauge}")


async def wake_verified(client: VllmClient, level: int | None) -> str:
    """Wake fully. Level 2 discarded the weights: wake the weights, reload them, then the KV
    cache, then reset the prefix cache (cached blocks refer to the old KV memory)."""
    began = time.monotonic()
    if level == 2:
        await client.wake_up(["weights"])
        await client.collective_rpc("reload_weights")
        await client.wake_up(["kv_cache"])
        await client.reset_prefix_cache()
    else:
        await client.wake_up()
    if not await _until(client.is_sleeping, want=False):
        raise EngineError("vLLM was woken but /is_sleeping stayed true", hint="Read the engine log.")
    gauge = await _gauge_until(client, "awake")
    took = time.monotonic() - began
    return f"woke from level {level or 1} in {took:.2f} s" + (
        "" if gauge == "awake" else f"; gauge shows {gauge}"
    )


async def _until(check: Callable[[], Awaitable[bool]], *, want: bool) -> bool:
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    while True:
        if await check() is want:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(VERIFY_POLL_S)


async def _gauge_until(client: VllmClient, expected: str) -> str | None:
    gauge: str | None = None
    deadline = time.monotonic() + VERIFY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(UpstreamError):
            gauge = sleep_gauge(await client.metrics_text(timeout=2.0))
        if gauge == expected:
            break
        await asyncio.sleep(VERIFY_POLL_S * 5)
    return gauge
