"""Persistence of supervised instances, their transitions, and load presets (migration 0002).

``InstanceStore`` is what the daemon hands the supervisor (supervisor and store are sibling
layers; the supervisor sees it through its ``InstanceRepository`` protocol). A record and the
transition that produced it are written in one transaction, so the history never disagrees
with the row.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from vllm_mcp.api.instances import PresetView
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.instance import FailureInfo, InstanceRecord, Transition
from vllm_mcp.core.lifecycle import Event, State
from vllm_mcp.errors import InvalidRequest, StoreError
from vllm_mcp.store.db import Database

log = logging.getLogger(__name__)

_UPSERT = (
    "INSERT OR REPLACE INTO instances (name, model, spec, state, state_since, created_at, port, pid, "
    "argv, log_path, log_offset, loras, sleep_level, started_at, ready_at, last_error, restarts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class InstanceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- instances ---------------------------------------------------------------------------

    def save(self, record: InstanceRecord, transition: Transition | None = None) -> None:
        """Upsert the record (and append the transition that produced it) atomically."""
        row = _record_row(record)
        try:
            with self.db.transaction() as conn:
                conn.execute(_UPSERT, row)
                if transition is not None:
                    _insert_transition(conn, transition)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save instance {record.name}: {exc}", instance=record.name) from exc

    def record_transition(self, transition: Transition) -> None:
        """Append a transition without a row (the instance row is about to go)."""
        try:
            with self.db.transaction() as conn:
                _insert_transition(conn, transition)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot record transition of {transition.name}: {exc}") from exc

    def delete(self, name: str, transition: Transition | None = None) -> None:
        try:
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM instances WHERE name = ?", (name,))
                if transition is not None:
                    _insert_transition(conn, transition)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete instance {name}: {exc}", instance=name) from exc

    def load_all(self) -> list[InstanceRecord]:
        """Every instance row. A row whose spec no longer validates (an older allowlist) is
        skipped with a warning rather than stopping the daemon from starting."""
        out = []
        for row in self.db.query("SELECT * FROM instances ORDER BY created_at"):
            try:
                out.append(_row_record(row))
            except (InvalidRequest, ValueError, TypeError) as exc:
                log.warning("skipping unreadable instance row %s: %s", row["name"], exc)
        return out

    def transitions(self, name: str, limit: int = 100) -> list[Transition]:
        """The newest ``limit`` transitions of ``name``, oldest first."""
        rows = self.db.query(
            "SELECT instance, at, from_state, to_state, event, detail FROM instance_transitions "
            "WHERE instance = ? ORDER BY id DESC LIMIT ?",
            (name, limit),
        )
        return [
            Transition(
                name=r["instance"],
                at=r["at"],
                from_state=State(r["from_state"]) if r["from_state"] else None,
                to_state=State(r["to_state"]),
                event=Event(r["event"]),
                detail=r["detail"],
            )
            for r in reversed(rows)
        ]

    # -- presets -----------------------------------------------------------------------------

    def save_preset(self, preset: PresetView) -> None:
        spec = json.dumps(preset.given())
        self.db.execute(
            "INSERT INTO presets (name, model, description, spec, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET model = excluded.model, "
            "description = excluded.description, spec = excluded.spec, updated_at = excluded.updated_at",
            (preset.name, preset.model, preset.description, spec, preset.created_at, preset.updated_at),
        )

    def get_preset(self, name: str) -> PresetView | None:
        rows = self.db.query("SELECT * FROM presets WHERE name = ?", (name,))
        return _preset(rows[0]) if rows else None

    def list_presets(self) -> list[PresetView]:
        return [_preset(r) for r in self.db.query("SELECT * FROM presets ORDER BY name")]

    def delete_preset(self, name: str) -> bool:
        return self.db.execute("DELETE FROM presets WHERE name = ?", (name,)).rowcount > 0


def _insert_transition(conn: sqlite3.Connection, t: Transition) -> None:
    conn.execute(
        "INSERT INTO instance_transitions (instance, at, from_state, to_state, event, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            t.name,
            t.at,
            t.from_state.value if t.from_state else None,
            t.to_state.value,
            t.event.value,
            t.detail,
        ),
    )


def _record_row(r: InstanceRecord) -> tuple[Any, ...]:
    error = None
    if r.last_error is not None:
        e = r.last_error
        error = json.dumps(
            {"message": e.message, "code": e.code, "exit_code": e.exit_code, "log_tail": e.log_tail}
        )
    return (
        r.name,
        r.spec.model,
        json.dumps(r.spec.to_dict()),
        r.state.value,
        r.state_since,
        r.created_at,
        r.port,
        r.pid,
        json.dumps(list(r.argv)),
        r.log_path,
        r.log_offset,
        json.dumps(r.loras),
        r.sleep_level,
        r.started_at,
        r.ready_at,
        error,
        r.restarts,
    )


def _row_record(row: sqlite3.Row) -> InstanceRecord:
    error = json.loads(row["last_error"]) if row["last_error"] else None
    return InstanceRecord(
        name=row["name"],
        spec=EngineSpec.from_dict(json.loads(row["spec"])),
        state=State(row["state"]),
        state_since=row["state_since"],
        created_at=row["created_at"],
        port=row["port"],
        pid=row["pid"],
        argv=tuple(json.loads(row["argv"])),
        log_path=row["log_path"],
        log_offset=row["log_offset"],
        loras=dict(json.loads(row["loras"])),
        sleep_level=row["sleep_level"],
        started_at=row["started_at"],
        ready_at=row["ready_at"],
        last_error=FailureInfo(**error) if error else None,
        restarts=row["restarts"],
    )


def _preset(row: sqlite3.Row) -> PresetView:
    fields = json.loads(row["spec"])
    fields.pop("model", None)
    return PresetView(
        name=row["name"],
        model=row["model"],
        description=row["description"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        **fields,
    )
