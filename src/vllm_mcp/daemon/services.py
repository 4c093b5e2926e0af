"""The composition root: every long-lived part of the daemon, built once from the settings.

Subsystems (supervisor, monitor, discovery, optimizer, gateway) are attached here as they land;
routes reach them only through ``Services``. ``start``/``stop`` run in the daemon's lifespan.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from vllm_mcp import __version__
from vllm_mcp.api.schemas import DaemonInfo
from vllm_mcp.config import Settings
from vllm_mcp.store import Database

if TYPE_CHECKING:
    from vllm_mcp.discovery.service import Discovery
    from vllm_mcp.optimizer.service import Optimizer, RunningEngine
    from vllm_mcp.scheduler.switch import Switcher
    from vllm_mcp.supervisor.supervisor import Supervisor

Hook = Callable[[], Awaitable[None]]


@dataclass
class Services:
    settings: Settings
    db: Database
    started_at: float = field(default_factory=time.time)
    tcp: str | None = None
    _on_start: list[Hook] = field(default_factory=list)
    _on_stop: list[Hook] = field(default_factory=list)
    supervisor: Supervisor = field(init=False)  # set in build()

    @cached_property
    def switcher(self) -> Switcher:
        from vllm_mcp.scheduler.switch import Switcher

        switcher = Switcher(self.supervisor, admit=self.optimizer.check_before_load)
        self._on_stop.insert(0, switcher.close)
        return switcher

    @cached_property
    def discovery(self) -> Discovery:
        """Models on disk and running vLLM servers (built on first use; nothing to stop)."""
        from vllm_mcp.daemon.discovery_service import build_discovery

        return build_discovery(self.settings, self.db)

    @cached_property
    def optimizer(self) -> Optimizer:
        """Memory estimates, recommendations, placement, fit checks, calibration (docs/optimizer.md)."""
        from vllm_mcp.optimizer.service import Optimizer, running_engines

        async def running() -> list[RunningEngine]:
            return running_engines(await self.supervisor.list())

        return Optimizer(self.settings, self.db, running=running)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.paths.state_dir.mkdir(parents=True, exist_ok=True)
        settings.log_dir.mkdir(parents=True, exist_ok=True)
        services = cls(settings=settings, db=Database(settings.db_path))
        services._attach_supervisor()
        return services

    def _attach_supervisor(self) -> None:
        # The supervisor sees persistence only through its repository protocol (store and
        # supervisor are sibling layers): the composition root builds the store for it.
        from vllm_mcp.store.instances import InstanceStore
        from vllm_mcp.supervisor.supervisor import Supervisor

        self.supervisor = Supervisor(
            self.settings, InstanceStore(self.db), on_started=self.optimizer.on_engine_started
        )
        self.add_lifecycle(self.supervisor.start, self.supervisor.stop)

    def add_lifecycle(self, start: Hook | None = None, stop: Hook | None = None) -> None:
        """Register work for start-up (in order) and shutdown (in reverse order)."""
        if start is not None:
            self._on_start.append(start)
        if stop is not None:
            self._on_stop.insert(0, stop)

    async def start(self) -> None:
        for hook in self._on_start:
            await hook()

    async def stop(self) -> None:
        for hook in self._on_stop:
            await hook()
        self.db.close()

    def info(self) -> DaemonInfo:
        s = self.settings
        return DaemonInfo(
            version=__version__,
            pid=os.getpid(),
            started_at=self.started_at,
            state_dir=str(s.paths.state_dir),
            socket_path=str(s.socket_path),
            db_path=str(s.db_path),
            log_dir=str(s.log_dir),
            tcp=self.tcp,
        )
