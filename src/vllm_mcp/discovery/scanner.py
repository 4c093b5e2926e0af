"""Walk the scan roots, find model units, and (re)read only the units whose files changed.

A *unit* is what gets fingerprinted and read as a whole:

- an HF cache repo ``models--org--name/`` (``refs/``, ``blobs/``, ``snapshots/<rev>/``): one
  entry per snapshot (and per GGUF file in it); ``refs/main`` decides which revision gets the
  plain ``org/name`` id;
- a plain folder holding ``config.json`` or ``adapter_config.json`` (not searched deeper);
- a plain folder holding ``*.gguf`` files.

Contract: a rescan that finds nothing changed reads no file contents. The fingerprint of a unit
is built from ``scandir``/``stat`` only (names, sizes, mtimes; symlinks followed, a dangling one
recorded as such), and a unit whose fingerprint matches the previous scan keeps its entries.
Every filesystem error becomes part of the result (a problem on an entry, or a root that does
not exist); ``scan`` never raises for what it finds on disk.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vllm_mcp.api.discovery import DiscoveredModel, EntrySource, ScanRootInfo
from vllm_mcp.discovery.folder import DirContext, FileStat, read_dir

HF_REPO_PREFIX = "models--"
SKIP_PREFIXES = (".", "datasets--", "spaces--", "__pycache__")
SNAPSHOT_DEPTH = 2  # files in a snapshot and one folder below (e.g. a GGUF repo's quant folders)


@dataclass(frozen=True)
class ScanRoot:
    path: Path
    kind: EntrySource


@dataclass
class IndexRow:
    """One unit as the last scan left it (persisted in ``discovery_index``)."""

    unit: str
    root: str
    fingerprint: str
    scanned_at: float
    entries: list[DiscoveredModel]


@dataclass
class ScanOutcome:
    rows: dict[str, IndexRow]  # every unit found this time
    changed: list[IndexRow]  # units read this time (new or changed)
    removed: list[str]  # units gone since the previous scan
    roots: list[ScanRootInfo]
    duration_s: float = 0.0

    @property
    def reused(self) -> int:
        return len(self.rows) - len(self.changed)

    def entries(self) -> list[DiscoveredModel]:
        return [e for row in self.rows.values() for e in row.entries]


@dataclass
class _Unit:
    path: str
    hf: bool
    entries: list[os.DirEntry[str]] = field(default_factory=list)  # plain folder: its scandir
    raw: list[tuple[str, int, int, bool]] = field(default_factory=list)  # (name, size, mtime, ok)
    fingerprint: str = ""

    def stats(self) -> dict[str, FileStat]:
        return {name: FileStat(size, mtime, ok) for name, size, mtime, ok in self.raw}


def _stat(entry: os.DirEntry[str]) -> FileStat:
    try:
        st = entry.stat()  # follows symlinks: blob size and mtime
    except OSError:
        return FileStat(0, 0, ok=False)
    return FileStat(st.st_size, st.st_mtime_ns)


def _files(folder: Path, depth: int, prefix: str = "") -> dict[str, FileStat]:
    """Files under ``folder`` (``depth`` levels), relative name → stat. Unreadable folders: empty."""
    out: dict[str, FileStat] = {}
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    if depth > 1:
                        out.update(_files(Path(entry.path), depth - 1, f"{prefix}{entry.name}/"))
                else:
                    out[prefix + entry.name] = _stat(entry)
    except OSError:
        pass
    return out


def _digest(parts: list[str]) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def _raw_stats(entries: list[os.DirEntry[str]]) -> list[tuple[str, int, int, bool]]:
    """(name, size, mtime_ns, ok) of the files among ``entries`` — the hot path of a rescan:
    one ``stat`` per file, no objects beyond the tuple."""
    out = []
    for entry in entries:
        name = entry.name
        if name[0] == "." or entry.is_dir():
            continue
        try:
            st = entry.stat()
        except OSError:
            out.append((name, 0, 0, False))
            continue
        out.append((name, st.st_size, st.st_mtime_ns, True))
    out.sort()
    return out


def _hf_fingerprint(repo: Path) -> str:
    parts: list[str] = []
    for sub, depth in (("refs", 3), ("snapshots", SNAPSHOT_DEPTH + 1)):
        for name, st in sorted(_files(repo / sub, depth).items()):
            parts.append(f"{sub}/{name}\t{st.size}\t{st.mtime_ns}\t{st.ok}")
    try:
        with os.scandir(repo / "blobs") as it:
            for entry in it:
                if entry.name.endswith(".incomplete"):
                    st = _stat(entry)
                    parts.append(f"blobs/{entry.name}\t{st.size}\t{st.mtime_ns}")
    except OSError:
        pass
    return _digest(sorted(parts))


def _walk(root: str, depth: int) -> Iterator[_Unit]:
    """Units under a root, ``depth`` folder levels deep; HF repos are recognised anywhere.

    A plain unit keeps the ``scandir`` entries it was recognised by, so a rescan lists each
    model folder once."""
    try:
        with os.scandir(root) as it:
            entries = list(it)
    except OSError:
        return
    names = {e.name for e in entries}
    if "config.json" in names or "adapter_config.json" in names:
        yield _Unit(root, hf=False, entries=entries)
        return
    if any(n.endswith(".gguf") for n in names):
        yield _Unit(root, hf=False, entries=entries)
    for entry in entries:
        if entry.name.startswith(SKIP_PREFIXES) or not entry.is_dir():
            continue
        if entry.name.startswith(HF_REPO_PREFIX):
            yield _Unit(entry.path, hf=True)
        elif depth > 0:
            yield from _walk(entry.path, depth - 1)


def _fingerprint(unit: _Unit) -> None:
    if unit.hf:
        unit.fingerprint = _hf_fingerprint(Path(unit.path))
    else:
        unit.raw = _raw_stats(unit.entries)
        unit.fingerprint = _digest([f"{n}\t{size}\t{mtime}\t{ok}" for n, size, mtime, ok in unit.raw])


def _read_refs(repo: Path) -> dict[str, str]:
    """ref name (``main``, ``pr/1``) → commit hash. Unreadable refs are skipped."""
    refs: dict[str, str] = {}
    for name, st in _files(repo / "refs", 3).items():
        if st.ok:
            try:
                refs[name] = (repo / "refs" / name).read_text().strip()
            except OSError:
                continue
    return refs


def _incomplete_blobs(repo: Path) -> tuple[int, int]:
    count = nbytes = 0
    try:
        with os.scandir(repo / "blobs") as it:
            for entry in it:
                if entry.name.endswith(".incomplete"):
                    count += 1
                    nbytes += _stat(entry).size
    except OSError:
        pass
    return count, nbytes


def _snapshots(repo: Path) -> list[tuple[str, float]]:
    """(revision, mtime) of each snapshot, newest first."""
    out: list[tuple[str, float]] = []
    try:
        with os.scandir(repo / "snapshots") as it:
            for entry in it:
                if entry.is_dir() and not entry.name.startswith("."):
                    out.append((entry.name, entry.stat().st_mtime))
    except OSError:
        pass
    return sorted(out, key=lambda rev: -rev[1])


def read_hf_repo(repo: Path, root: str) -> list[DiscoveredModel]:
    """Every snapshot of one HF cache repo. ``refs/main`` (else the newest) gets the plain id."""
    repo_id = repo.name.removeprefix(HF_REPO_PREFIX).replace("--", "/", 1)
    refs = _read_refs(repo)
    snapshots = _snapshots(repo)
    main = refs.get("main") or (snapshots[0][0] if snapshots else None)
    blobs = _incomplete_blobs(repo)
    entries: list[DiscoveredModel] = []
    for rev, _ in snapshots:
        folder = repo / "snapshots" / rev
        ctx = DirContext(
            id_base=repo_id if rev == main else f"{repo_id}@{rev}",
            name=repo_id.split("/")[-1],
            source="hf-cache",
            root=root,
            repo_id=repo_id,
            revision=rev,
            refs=sorted(n for n, h in refs.items() if h == rev),
            incomplete_blobs=blobs,
        )
        entries.extend(read_dir(folder, _files(folder, SNAPSHOT_DEPTH), ctx))
    if not snapshots and blobs[0]:
        ctx = DirContext(repo_id, repo_id.split("/")[-1], "hf-cache", root, repo_id, incomplete_blobs=blobs)
        entries.extend(read_dir(repo, {}, ctx))
    return entries


def _read_unit(unit: _Unit, root: str) -> list[DiscoveredModel]:
    path = Path(unit.path)
    if unit.hf:
        return read_hf_repo(path, root)
    ctx = DirContext(id_base=unit.path, name=path.name, source="local", root=root)
    return read_dir(path, unit.stats(), ctx)


def scan(roots: list[ScanRoot], previous: Mapping[str, IndexRow], *, depth: int = 3) -> ScanOutcome:
    """Scan ``roots``; units whose fingerprint matches ``previous`` keep their entries unread."""
    started = time.perf_counter()
    now = time.time()
    rows: dict[str, IndexRow] = {}
    changed: list[IndexRow] = []
    infos: list[ScanRootInfo] = []
    for root in roots:
        found = 0
        for unit in _walk(str(root.path), depth):
            key = unit.path
            if key in rows:
                continue  # reachable from two roots: the first one wins
            _fingerprint(unit)
            old = previous.get(key)
            if old is not None and old.fingerprint == unit.fingerprint:
                row = old
            else:
                row = IndexRow(key, str(root.path), unit.fingerprint, now, _read_unit(unit, str(root.path)))
                changed.append(row)
            rows[key] = row
            found += len(row.entries)
        infos.append(
            ScanRootInfo(path=str(root.path), kind=root.kind, exists=root.path.is_dir(), models=found)
        )
    removed = [key for key in previous if key not in rows]
    return ScanOutcome(rows, changed, removed, infos, time.perf_counter() - started)
