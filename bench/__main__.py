"""``python -m bench [ENTRY ...] [--set ENTRY.KEY=VALUE ...] [--list] [--out DIR] [--no-write]``.

Exit status: 0 all goals met, 1 a goal missed, 2 an entry crashed (or a bad argument).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.entries import ENTRIES
from bench.harness import REPO, render, run_entries, write_report


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        entry, dot, param = key.partition(".")
        if not sep or not dot or not entry or not param:
            raise ValueError(f"--set takes ENTRY.KEY=VALUE, not {item!r}")
        overrides.setdefault(entry, {})[param] = value
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the vllm-mcp benchmarks.")
    parser.add_argument("entries", nargs="*", help="entries to run (default: all; see --list)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="ENTRY.KEY=VALUE",
        help="override a parameter, e.g. --set cold-start.runs=5",
    )
    parser.add_argument("--list", action="store_true", help="list the entries and their parameters")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="where the JSON goes")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)

    by_name = {e.name: e for e in ENTRIES}
    if args.list:
        for e in ENTRIES:
            defaults = " ".join(f"{k}={v}" for k, v in e.defaults.items())
            print(f"{e.name:16} {e.description}\n{'':16} {defaults}")
        return 0
    unknown = [n for n in args.entries if n not in by_name]
    try:
        if unknown:
            raise ValueError(f"unknown entry {', '.join(unknown)} (known: {', '.join(by_name)})")
        overrides = parse_overrides(args.sets)
        chosen = [by_name[n] for n in args.entries] or list(ENTRIES)
        stray = [n for n in overrides if n not in {e.name for e in chosen}]
        if stray:
            raise ValueError(f"--set names entries that do not run: {', '.join(stray)}")
        report = run_entries(chosen, overrides)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    render(report)
    if not args.no_write:
        print(f"wrote {write_report(report, args.out)}")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
