"""Discovery's tables (migration 0003) through the daemon's ``Database``, taken as a Protocol.

``discovery`` and ``store`` are sibling layers and may not import each other, so this module
names only the three methods it needs; ``vllm_mcp.store.Database`` has them. Every call here is
synchronous and short, and must run on the daemon's event-loop thread (the one writer).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from vllm_mcp.api.discovery import DiscoveredModel, HubInfo
from vllm_mcp.discovery.scanner import IndexRow

_entries = TypeAdapter(list[DiscoveredModel])


class SqlDb(Protocol):
    def query(self, sql: str, params: tuple[Any, ...] = ...) -> list[Any]: ...

    def execute(self, sql: str, params: tuple[Any, ...] = ...) -> Any: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


def load_index(db: SqlDb) -> dict[str, IndexRow]:
    """The stat index as the last scan left it. Rows that no longer parse are dropped (reread)."""
    rows: dict[str, IndexRow] = {}
    for unit, root, fingerprint, scanned_at, entries in db.query(
        "SELECT path, root, fingerprint, scanned_at, entries FROM discovery_index"
    ):
        try:
            rows[unit] = IndexRow(unit, root, fingerprint, scanned_at, _entries.validate_json(entries))
        except ValidationError:
            continue  # written by an older schema: the next scan reads the unit again
    return rows


def save_index(db: SqlDb, changed: Iterable[IndexRow], removed: Sequence[str]) -> None:
    """Write the units a scan read and drop the ones it no longer found, all or nothing."""
    with db.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO discovery_index (path, root, fingerprint, scanned_at, entries) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (r.unit, r.root, r.fingerprint, r.scanned_at, _entries.dump_json(r.entries).decode())
                for r in changed
            ],
        )
        conn.executemany("DELETE FROM discovery_index WHERE path = ?", [(u,) for u in removed])


def clear_index(db: SqlDb) -> None:
    db.execute("DELETE FROM discovery_index")


def load_hub(db: SqlDb, max_age_s: float) -> dict[str, HubInfo]:
    """Hub answers younger than ``max_age_s``."""
    cutoff = time.time() - max_age_s
    out: dict[str, HubInfo] = {}
    for repo_id, info in db.query("SELECT repo_id, info FROM discovery_hub WHERE fetched_at >= ?", (cutoff,)):
        try:
            out[repo_id] = HubInfo.model_validate(json.loads(info))
        except (ValueError, ValidationError):
            continue
    return out


def save_hub(db: SqlDb, infos: dict[str, HubInfo]) -> None:
    with db.transaction() as conn:
        conn.executemany(
            "INSERT OR REPLACE INTO discovery_hub (repo_id, fetched_at, info) VALUES (?, ?, ?)",
            [(repo, info.fetched_at, info.model_dump_json()) for repo, info in infos.items()],
        )
