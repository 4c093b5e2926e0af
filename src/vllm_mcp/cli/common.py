"""Shared CLI plumbing: settings, async entry, errors as one clear line, JSON vs rich output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from vllm_mcp.config import LoadedSettings, load_settings
from vllm_mcp.errors import VllmMcpError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def settings_from(args: argparse.Namespace) -> LoadedSettings:
    return load_settings(config_path=getattr(args, "config", None))


def run_async(fn: Callable[[], Awaitable[int]]) -> int:
    return anyio.run(fn)


def print_error(exc: VllmMcpError) -> None:
    err.print(f"[bold red]error:[/] {exc.message}", markup=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {exc.hint}", markup=True)
    tail = exc.context.get("log_tail")
    if tail:
        err.print("[dim]log tail:[/]", markup=True)
        err.print(str(tail), markup=False)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    t = Table(title=title, show_lines=False, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
