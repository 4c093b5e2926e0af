from __future__ import annotations

import threading
from pathlib import Path

import pytest

from vllm_mcp.errors import StoreError
from vllm_mcp.store import Database


def test_migrations_apply_once_and_survive_reopen(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")
    applied = db.applied_migrations
    assert applied[0] == "0001_core.sql" and applied == sorted(applied)
    db.close()
    again = Database(tmp_path / "s.db")
    assert again.applied_migrations == applied
    assert again.query("PRAGMA journal_mode")[0][0] == "wal"
    again.close()


def test_a_failed_transaction_leaves_nothing_half_written(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.db")

    def write_then_fail() -> None:
        with db.transaction() as conn:
            conn.execute("INSERT INTO audit_log (at, actor, action) VALUES (1, 'a', 'x')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert db.query("SELECT COUNT(*) FROM audit_log")[0][0] == 0
    with pytest.raises(StoreError, match="state database error"):
        db.execute("SELECT * FROM no_such_table")


def test_threads_sharing_the_daemon_connection_never_interleave_transactions(tmp_path: Path) -> None:
    # The daemon's loop and its worker threads (calibration, discovery scans) share one
    # connection; without the lock this fails with "cannot start a transaction within a
    # transaction" or "not an error".
    db = Database(tmp_path / "s.db")
    errors: list[BaseException] = []

    def writer(actor: str) -> None:
        try:
            for i in range(150):
                with db.transaction() as conn:
                    conn.execute("INSERT INTO audit_log (at, actor, action) VALUES (?, ?, 'a')", (i, actor))
                    conn.execute("INSERT INTO audit_log (at, actor, action) VALUES (?, ?, 'b')", (i, actor))
                db.query("SELECT COUNT(*) FROM audit_log WHERE actor = ?", (actor,))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[0]
    assert db.query("SELECT COUNT(*) FROM audit_log")[0][0] == 4 * 150 * 2
