"""The SQLite state store: one file, WAL, busy timeout, foreign keys, numbered migrations.

Migrations are ``migrations/NNNN_name.sql`` shipped as package data and applied in name order;
each applied name is recorded in ``schema_migrations``, so a migration runs exactly once and
half-applied ones roll back (each runs in one transaction). One writer: the daemon owns the only
``Database`` that writes; its calls are short and synchronous (sub-millisecond on a local disk).

Thread safety: the daemon's event loop and the worker threads it hands slow work to (a
calibration record after a start, a discovery scan) share this one connection. Every call and
every whole transaction holds ``_lock``, so statements of two threads never interleave inside a
transaction (which sqlite3 reports as nonsense such as "not an error").
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from vllm_mcp.errors import StoreError

BUSY_TIMEOUT_MS = 5000


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("vllm_mcp.store") / "migrations"
    items = [(p.name, p.read_text(encoding="utf-8")) for p in folder.iterdir() if p.name.endswith(".sql")]
    return sorted(items)


class Database:
    """A connection with the project's pragmas and migrations applied."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open state database {self.path}: {exc}",
                hint="Check the path (STATE_DB_PATH) is writable and not corrupt.",
                path=self.path,
            ) from exc

    def _migrate(self) -> None:
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = {r[0] for r in self._conn.execute("SELECT name FROM schema_migrations")}
        for name, sql in _migrations():
            if name in done:
                continue
            with self.transaction():
                for statement in _split_sql(sql):
                    self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, time.time()))

    @property
    def applied_migrations(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT name FROM schema_migrations ORDER BY name")]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all (no half-written state)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(f"state database error: {exc}", sql=sql.split(maxsplit=1)[0]) from exc

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (our migrations keep ';' out of string literals)."""
    return [s.strip() for s in script.split(";") if s.strip() and not _only_comments(s)]


def _only_comments(chunk: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in chunk.splitlines())
