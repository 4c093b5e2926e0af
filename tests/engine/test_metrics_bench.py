"""The bench harness cannot rot: the parse entry runs with a tiny N through the real CLI path,
and the harness records skips, errors and missed goals as it says it does."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.entries import ENTRIES
from bench.harness import Entry, Goal, Params, Row, Skip, run_entries


def test_the_parse_entry_runs_and_writes_json(tmp_path: Path) -> None:
    rc = main(
        [
            "metrics-parse",
            "--set",
            "metrics-parse.runs=2",
            "--set",
            "metrics-parse.warmup=0",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc in (0, 1)  # 1 only if this busy machine missed the goal on 2 runs
    (path,) = tmp_path.glob("*.json")
    record = json.loads(path.read_text())
    assert record["errors"] == {}
    assert record["skipped"] == {}
    assert record["params"]["metrics-parse"]["runs"] == 2
    rows = record["rows"]
    assert [r["metric"] for r in rows] == ["parse_metrics, loaded page", "parse_metrics, asleep page"]
    for row in rows:
        assert row["ours"] > 0
        assert row["baseline"] > 0
        assert row["ratio"] == row["ours"] / row["baseline"]
        assert row["goal"] == {"limit": 2.0, "op": "<="}
        assert row["passed"] is (row["ours"] <= 2.0)
    assert record["machine"]["cpus"]


def test_every_entry_is_registered_once_with_a_description() -> None:
    names = [e.name for e in ENTRIES]
    assert len(names) == len(set(names))
    assert {"metrics-parse", "cold-start"} <= set(names)
    assert all(e.description for e in ENTRIES)


def test_the_harness_records_skips_errors_and_missed_goals() -> None:
    def slow(params: Params) -> list[Row]:
        return [Row("slow", "t", float(params["t"]), "ms", baseline=2.0, goal=Goal(1.0))]

    def skip(_: Params) -> list[Row]:
        raise Skip("no GPU here")

    def crash(_: Params) -> list[Row]:
        raise RuntimeError("boom")

    entries = [Entry("slow", "d", slow, {"t": 1.5}), Entry("skip", "d", skip), Entry("crash", "d", crash)]
    report = run_entries(entries, {"slow": {"t": "3"}})
    (row,) = report.rows
    assert (row.ours, row.ratio, row.passed) == (3.0, 1.5, False)
    assert report.skipped == {"skip": "no GPU here"}
    assert report.errors == {"crash": "RuntimeError: boom"}
    assert report.exit_code == 2
    assert run_entries(entries[:1], {}).exit_code == 1


def test_bad_arguments_exit_2_without_running(capsys: object) -> None:
    assert main(["no-such-entry", "--no-write"]) == 2
    assert main(["metrics-parse", "--set", "metrics-parse.nope=1", "--no-write"]) == 2
    assert main(["metrics-parse", "--set", "metrics-parse.runs=many", "--no-write"]) == 2
    assert main(["metrics-parse", "--set", "cold-start.runs=1", "--no-write"]) == 2
