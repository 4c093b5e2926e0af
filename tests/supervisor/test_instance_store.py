"""InstanceStore (migration 0002) over a real SQLite file: rows, transitions, presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from vllm_mcp.api.instances import PresetView
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.instance import FailureInfo, InstanceRecord, Transition
from vllm_mcp.core.lifecycle import Event, State
from vllm_mcp.errors import StoreError
from vllm_mcp.store import Database
from vllm_mcp.store.instances import InstanceStore


def _record(**kw: object) -> InstanceRecord:
    fields: dict[str, object] = {
        "name": "tiny",
        "spec": EngineSpec("/m/tiny", served_name="tiny", enable_lora=True, extra_flags=("--seed", "1")),
        "state": State.READY,
        "state_since": 2.0,
        "created_at": 1.0,
        "port": 8200,
        "pid": 1234,
        "argv": ("/bin/vllm", "serve", "/m/tiny"),
        "log_path": "/logs/tiny.log",
        "log_offset": 10,
        "loras": {"a": "/l/a"},
        "sleep_level": None,
        "started_at": 1.5,
        "ready_at": 2.0,
        "last_error": FailureInfo("boom", "engine_crashed", -9, "tail"),
        "restarts": 2,
    }
    fields.update(kw)
    return InstanceRecord(**fields)  # type: ignore[arg-type]


def test_record_round_trips_with_its_transition(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = InstanceStore(db)
    record = _record()
    store.save(record, Transition("tiny", 2.0, State.STARTING, State.READY, Event.BECAME_READY, "ok"))
    db.close()
    again = InstanceStore(Database(tmp_path / "state.db"))
    assert again.load_all() == [record]
    [t] = again.transitions("tiny")
    assert (t.from_state, t.to_state, t.event, t.detail) == (
        State.STARTING,
        State.READY,
        Event.BECAME_READY,
        "ok",
    )


def test_delete_keeps_the_history(tmp_path: Path) -> None:
    store = InstanceStore(Database(tmp_path / "state.db"))
    store.save(_record(), Transition("tiny", 1.0, None, State.READY, Event.START))
    store.delete("tiny", Transition("tiny", 3.0, State.STOPPING, State.STOPPED, Event.EXITED))
    assert store.load_all() == []
    assert [t.event for t in store.transitions("tiny")] == [Event.START, Event.EXITED]


def test_a_failed_write_leaves_no_half_written_transition(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = InstanceStore(db)
    bad = _record(state_since=None)  # NOT NULL violation on the row
    with pytest.raises(StoreError):
        store.save(bad, Transition("tiny", 1.0, None, State.STARTING, Event.START))
    assert store.transitions("tiny") == []


def test_unreadable_rows_are_skipped_not_fatal(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.db")
    store = InstanceStore(db)
    store.save(_record())
    store.save(_record(name="old"))
    db.execute("UPDATE instances SET spec = ? WHERE name = 'old'", ('{"model": "/m/x", "bogus": 1}',))
    assert [r.name for r in store.load_all()] == ["tiny"]


def test_presets_crud(tmp_path: Path) -> None:
    store = InstanceStore(Database(tmp_path / "state.db"))
    preset = PresetView(name="p", model="org/m", max_model_len=512, gpus=[0], created_at=1, updated_at=1)
    store.save_preset(preset)
    assert store.get_preset("p") == preset
    newer = preset.model_copy(update={"max_model_len": 1024, "created_at": 5.0, "updated_at": 9.0})
    store.save_preset(newer)
    got = store.get_preset("p")
    assert got is not None
    assert (got.max_model_len, got.created_at, got.updated_at) == (1024, 1.0, 9.0)
    assert [p.name for p in store.list_presets()] == ["p"]
    assert store.delete_preset("p")
    assert not store.delete_preset("p")
    assert store.get_preset("p") is None
