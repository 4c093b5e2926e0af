"""What the supervisor needs from persistence (``vllm_mcp.store.instances.InstanceStore``).

A protocol, because supervisor and store are sibling layers: the daemon builds the store and
hands it in. Calls are short and synchronous (one local SQLite writer).
"""

from __future__ import annotations

from typing import Protocol

from vllm_mcp.api.instances import PresetView
from vllm_mcp.core.instance import InstanceRecord, Transition


class InstanceRepository(Protocol):
    def save(self, record: InstanceRecord, transition: Transition | None = None) -> None: ...

    def delete(self, name: str, transition: Transition | None = None) -> None: ...

    def load_all(self) -> list[InstanceRecord]: ...

    def transitions(self, name: str, limit: int = 100) -> list[Transition]: ...

    def save_preset(self, preset: PresetView) -> None: ...

    def get_preset(self, name: str) -> PresetView | None: ...

    def list_presets(self) -> list[PresetView]: ...

    def delete_preset(self, name: str) -> bool: ...
