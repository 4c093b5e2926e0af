"""Instance log files: one per instance, appended per start, paged from the end."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

from vllm_mcp.api.instances import LogPage

TAIL_LINES = 40  # lines of log shown with a failure
TAIL_CHARS = 4000
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def log_path_for(log_dir: Path, name: str) -> Path:
    """The log file of instance ``name`` (a served name may hold ':'; keep file names plain)."""
    return log_dir / "instances" / f"{_SAFE.sub('_', name)}.log"


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_page(path: Path, *, tail_lines: int, before: int | None) -> LogPage:
    """Up to ``tail_lines`` lines ending just before line ``before`` (the end when None)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    total = len(lines)
    end = total if before is None else max(0, min(before, total))
    start = max(0, end - max(0, tail_lines))
    return LogPage(
        lines=lines[start:end],
        offset=start,
        next_offset=start if start > 0 else None,
        total_lines=total,
        path=str(path),
    )


def begin_log(log_dir: Path, name: str, argv: list[str], now: float) -> tuple[Path, int]:
    """Append a start marker to the instance's log; returns the path and the byte offset where
    this start's output begins (failures show the tail from there, not an older run's)."""
    path = log_path_for(log_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = size_of(path)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"=== vllm-mcp {stamp}: starting {name}: {shlex.join(argv)}\n")
    return path, offset


def read_from(path: Path, offset: int) -> str:
    """Everything written after byte ``offset``."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def read_tail(path: Path, offset: int = 0, *, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last ``lines`` lines (at most ``chars`` characters) written after byte ``offset``."""
    text = "\n".join(read_from(path, offset).splitlines()[-lines:])
    return text[-chars:]
