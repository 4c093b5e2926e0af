"""Log paging and the event bus."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vllm_mcp.api.instances import InstanceEvent
from vllm_mcp.core.lifecycle import Event, State
from vllm_mcp.supervisor.events import QUEUE_SIZE, EventBus
from vllm_mcp.supervisor.logs import begin_log, read_page, read_tail


def test_log_pages_walk_back_to_the_top(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("".join(f"line {i}\n" for i in range(10)))
    page = read_page(path, tail_lines=4, before=None)
    assert (page.lines, page.offset, page.next_offset, page.total_lines) == (
        ["line 6", "line 7", "line 8", "line 9"], 6, 6, 10
    )  # fmt: skip
    page = read_page(path, tail_lines=4, before=page.next_offset)
    assert page.lines == ["line 2", "line 3", "line 4", "line 5"]
    page = read_page(path, tail_lines=4, before=page.next_offset)
    assert (page.lines, page.next_offset) == (["line 0", "line 1"], None)
    assert read_page(tmp_path / "missing.log", tail_lines=5, before=None).lines == []


def test_tail_starts_at_this_starts_offset(tmp_path: Path) -> None:
    path, offset = begin_log(tmp_path, "a:b", ["vllm", "serve", "x y"], 0.0)
    assert path.name == "a_b.log"
    assert offset == 0
    with path.open("a") as fh:
        fh.write("old run failed\n")
    path, offset = begin_log(tmp_path, "a:b", ["vllm", "serve"], 0.0)
    with path.open("a") as fh:
        fh.write("new run\n")
    tail = read_tail(path, offset)
    assert "old run" not in tail
    assert "new run" in tail
    assert "'x y'" in path.read_text()  # argv is shell-quoted in the marker


def _event(name: str, i: int = 0) -> InstanceEvent:
    return InstanceEvent(name=name, state=State.READY, event=Event.BECAME_READY, at=float(i))


@pytest.mark.anyio
async def test_subscription_filters_by_name_and_registers_at_once() -> None:
    bus = EventBus()
    with bus.subscribe("a") as sub:
        bus.publish(_event("b"))
        bus.publish(_event("a", 1))
        got = await sub.get(1.0)
        assert got is not None
        assert got.name == "a"
        assert await sub.get(0.05) is None


@pytest.mark.anyio
async def test_slow_subscriber_drops_oldest_and_close_ends_iteration() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    for i in range(QUEUE_SIZE + 5):
        bus.publish(_event("a", i))
    first = await sub.get(1.0)
    assert first is not None
    assert first.at == 5.0
    collected: list[InstanceEvent] = []

    async def drain() -> None:
        async for event in sub:
            collected.append(event)

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.05)
    bus.close()
    await asyncio.wait_for(task, 2.0)
    assert len(collected) == QUEUE_SIZE - 1
