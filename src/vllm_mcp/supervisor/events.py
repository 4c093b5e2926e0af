"""Publish/subscribe of instance events (transitions and progress notes), in process.

A subscription registers when it is *created*, not when iteration starts, so a caller that
subscribes and then issues a command sees every event the command causes. A slow subscriber
never blocks the owner task: its bounded queue drops the oldest event instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from vllm_mcp.api.instances import InstanceEvent

QUEUE_SIZE = 256


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def publish(self, event: InstanceEvent) -> None:
        for sub in list(self._subs):
            sub.offer(event)

    def subscribe(self, name: str | None = None) -> Subscription:
        """Events of instance ``name`` (all instances when None), from now on."""
        sub = Subscription(self, name)
        self._subs.add(sub)
        return sub

    def _drop(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close(self) -> None:
        """End every subscription (daemon shutdown): iterators stop."""
        for sub in list(self._subs):
            sub.close()


class Subscription:
    """An async iterator of events; use as a (sync or async) context manager to unsubscribe."""

    def __init__(self, bus: EventBus, name: str | None) -> None:
        self._bus = bus
        self._name = name
        self._queue: asyncio.Queue[InstanceEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self._closed = False

    def offer(self, event: InstanceEvent) -> None:
        if self._closed or (self._name is not None and event.name != self._name):
            return
        self._put(event)

    def _put(self, item: InstanceEvent | None) -> None:
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()  # drop the oldest: never block the publisher
        self._queue.put_nowait(item)

    async def get(self, timeout: float | None = None) -> InstanceEvent | None:
        """The next event, or None on timeout or when the subscription was closed."""
        if self._closed and self._queue.empty():
            return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._drop(self)
            self._put(None)  # wake a waiting reader

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> InstanceEvent:
        item = await self.get()
        if item is None:
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
