"""The registry: every benchmark entry, in the order they run.

To add one: write ``bench/entries/<name>.py`` with a ``run(params) -> list[Row]`` function and
an ``ENTRY = Entry(name=..., description=..., run=run, defaults={...})``, then list it here.
"""

from __future__ import annotations

from bench.entries import cold_start, discovery, manager, metrics_parse, optimizer_accuracy
from bench.harness import Entry

ENTRIES: list[Entry] = [
    metrics_parse.ENTRY,
    cold_start.ENTRY,
    manager.ENTRY,
    discovery.ENTRY,
    optimizer_accuracy.ENTRY,
]
