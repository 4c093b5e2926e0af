"""The benchmark harness: entries produce rows; the harness runs them, renders a table and
writes the JSON record.

An entry is a plain function ``run(params) -> list[Row]`` with its defaults declared beside it
(see ``bench/entries``). A row compares *ours* with an optional *baseline* measured in the same
run (never a number from another day or machine) and checks an optional *goal*. An entry that
cannot run here raises ``Skip`` with the reason; any other exception is recorded as an error and
the other entries still run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ParamValue = int | float | str
Params = Mapping[str, ParamValue]
REPO = Path(__file__).resolve().parent.parent


def _loadavg() -> list[float] | None:
    """Other engines on the box skew every timing: the record says how busy it was."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


class Skip(Exception):
    """The entry cannot run on this machine (the message says why and what to do)."""


@dataclass(frozen=True)
class Goal:
    limit: float
    op: Literal["<=", ">="] = "<="

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def render(self, unit: str) -> str:
        return f"{'≤' if self.op == '<=' else '≥'} {self.limit:g} {unit}"


@dataclass(frozen=True)
class Row:
    entry: str
    metric: str
    ours: float
    unit: str
    baseline: float | None = None
    goal: Goal | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / baseline: below 1 means ours takes less (for times: is faster)."""
        return self.ours / self.baseline if self.baseline else None

    @property
    def passed(self) -> bool | None:
        return self.goal.met(self.ours) if self.goal is not None else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    run: Callable[[Params], list[Row]]
    defaults: Params = field(default_factory=dict)


@dataclass
class Report:
    started: str
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, ParamValue]] = field(default_factory=dict)
    loadavg_start: list[float] | None = field(default_factory=_loadavg)

    @property
    def exit_code(self) -> int:
        """2: an entry crashed; 1: a goal was missed; 0: otherwise."""
        if self.errors:
            return 2
        return 1 if any(r.passed is False for r in self.rows) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "machine": {**machine_info(), "loadavg_start": self.loadavg_start, "loadavg_end": _loadavg()},
            "params": self.params,
            "rows": [r.to_json() for r in self.rows],
            "skipped": self.skipped,
            "errors": self.errors,
        }


def median_time(fn: Callable[[], object], runs: int, warmup: int) -> float:
    """The median wall time of ``fn`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def resolve_params(entry: Entry, overrides: Mapping[str, str]) -> dict[str, ParamValue]:
    """The entry's defaults with ``overrides`` applied, each coerced to its default's type."""
    params: dict[str, ParamValue] = dict(entry.defaults)
    for key, text in overrides.items():
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            raise ValueError(f"{entry.name} has no parameter {key!r} (known: {known})")
        kind = type(params[key])
        try:
            params[key] = kind(text)
        except ValueError:
            raise ValueError(f"{entry.name}.{key} takes a {kind.__name__}, not {text!r}") from None
    return params


def run_entries(entries: Sequence[Entry], overrides: Mapping[str, Mapping[str, str]]) -> Report:
    report = Report(started=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
    for entry in entries:
        params = resolve_params(entry, overrides.get(entry.name, {}))
        report.params[entry.name] = params
        try:
            report.rows.extend(entry.run(params))
        except Skip as skip:
            report.skipped[entry.name] = str(skip)
        except Exception as exc:  # one broken entry must not hide the others
            report.errors[entry.name] = f"{type(exc).__name__}: {exc}"
    return report


def write_report(report: Report, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report.started}.json"
    path.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    return path


def render(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"vllm-mcp bench {report.started}")
    for col in ("entry", "metric", "ours", "baseline", "ratio", "goal", "pass"):
        table.add_column(col, justify="right" if col in ("ours", "baseline", "ratio") else "left")
    for r in report.rows:
        table.add_row(
            r.entry,
            r.metric,
            f"{r.ours:.4g} {r.unit}",
            f"{r.baseline:.4g} {r.unit}" if r.baseline is not None else "—",
            f"{r.ratio:.2f}" if r.ratio is not None else "—",
            r.goal.render(r.unit) if r.goal else "—",
            {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "—"}[r.passed],
        )
    # Not a terminal (make, CI logs): rich would wrap at 80 columns; keep rows on one line.
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    for r in report.rows:
        if r.note:
            console.print(f"[dim]{r.entry} · {r.metric}: {r.note}[/dim]")
    for name, why in report.skipped.items():
        console.print(f"[yellow]skipped[/yellow] {name}: {why}")
    for name, err in report.errors.items():
        console.print(f"[red]error[/red] {name}: {err}")


def machine_info() -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commit": commit,
    }
