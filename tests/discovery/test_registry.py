"""The vLLM registry check: a real subprocess against a stand-in interpreter, cached per
version in SQLite, the labelled bundled list when no vLLM answers, and the real test bed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.testbed import require_testbed, tiny_model, vllm_bin
from vllm_mcp.config import Settings
from vllm_mcp.discovery.registry import BUNDLED_LABEL, MARKER, bundled, load_registry, vllm_python
from vllm_mcp.discovery.service import Discovery
from vllm_mcp.store import Database


def _fake_vllm(tmp_path: Path, version: str, archs: list[str], *, calls: Path, delay: float = 0) -> Path:
    """A `vllm` script whose shebang names a stand-in python that answers our two probes."""
    python = tmp_path / "venv" / "bin" / "python-standin"
    python.parent.mkdir(parents=True)
    payload = json.dumps({"archs": archs, "tool_parsers": ["hermes"], "reasoning_parsers": ["qwen3"]})
    python.write_text(
        "#!/bin/sh\n"
        f'echo "$2" | head -c 40 >> {calls}; echo >> {calls}\n'
        'case "$2" in *importlib.metadata*) echo ' + version + ";;\n"
        f"  *) sleep {delay}; echo 'INFO noise on stdout'; echo '{MARKER}{payload}';;\n"
        "esac\n"
    )
    script = tmp_path / "venv" / "bin" / "vllm"
    script.write_text(f"#!{python}\nimport sys\n")
    for p in (python, script):
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return script


def test_interpreter_comes_from_the_shebang(tmp_path: Path) -> None:
    script = _fake_vllm(tmp_path, "1.0", [], calls=tmp_path / "calls")
    assert vllm_python(str(script)) == tmp_path / "venv" / "bin" / "python-standin"
    assert vllm_python(str(tmp_path / "no-such-vllm")) is None


@pytest.mark.anyio
async def test_registry_is_asked_once_per_version_and_cached_in_sqlite(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    script = _fake_vllm(tmp_path, "9.9.9", ["LlamaForCausalLM"], calls=calls)
    db = Database(tmp_path / "state.db")
    reg = await load_registry(str(script), db, timeout=30)
    assert not reg.bundled and reg.vllm_version == "9.9.9"
    assert reg.check("LlamaForCausalLM").supported is True
    assert reg.check("MadeUpForCausalLM").supported is False
    assert reg.tool_parsers == frozenset({"hermes"})
    probes = [ln for ln in calls.read_text().splitlines() if "ModelRegistry" in ln or "import json" in ln]
    assert len(probes) == 1
    again = await load_registry(str(script), Database(tmp_path / "state.db"), timeout=30)
    assert again.archs == reg.archs
    probes = [ln for ln in calls.read_text().splitlines() if "import json" in ln]
    assert len(probes) == 1  # the second daemon life read SQLite, not vLLM
    row = db.query("SELECT vllm_version, payload FROM discovery_registry")
    assert row[0][0] == "9.9.9" and json.loads(row[0][1])["archs"] == ["LlamaForCausalLM"]


@pytest.mark.anyio
async def test_no_vllm_means_the_labelled_bundled_list(tmp_path: Path) -> None:
    reg = await load_registry(str(tmp_path / "missing-vllm"), Database(":memory:"), timeout=5)
    assert reg.bundled and reg.source.startswith(BUNDLED_LABEL)
    check = reg.check("LlamaForCausalLM")
    assert check.supported is True and check.bundled and BUNDLED_LABEL in check.source
    assert reg.check("MadeUpForCausalLM").supported is False


@pytest.mark.anyio
async def test_a_vllm_that_cannot_list_its_registry_falls_back_labelled(tmp_path: Path) -> None:
    python = tmp_path / "py"
    python.write_text(
        '#!/bin/sh\ncase "$2" in *importlib.metadata*) echo 1.2.3;; *) echo boom >&2; exit 3;; esac\n'
    )
    python.chmod(0o755)
    script = tmp_path / "vllm"
    script.write_text(f"#!{python}\n")
    script.chmod(0o755)
    reg = await load_registry(str(script), Database(":memory:"), timeout=10)
    assert reg.bundled and "did not list its registry: exit code 3: boom" in reg.source


def test_bundled_list_is_a_real_snapshot() -> None:
    reg = bundled()
    assert {
        "LlamaForCausalLM",
        "MixtralForCausalLM",
        "DeepseekV2ForCausalLM",
        "Qwen3ForCausalLM",
    } <= reg.archs
    assert reg.tool_parsers is not None and "hermes" in reg.tool_parsers


@pytest.mark.vllm
@pytest.mark.timeout(240)
@pytest.mark.anyio
async def test_real_vllm_registry_supports_tiny_llama_not_a_made_up_arch(tmp_path: Path) -> None:
    require_testbed()
    reg = await load_registry(str(vllm_bin()), Database(tmp_path / "s.db"), timeout=200)
    assert not reg.bundled, reg.source
    assert reg.vllm_version is not None and reg.vllm_version.startswith("0.32.0")
    tiny_arch = json.loads((tiny_model() / "config.json").read_text())["architectures"][0]
    assert reg.check(tiny_arch).supported is True
    assert reg.check("MadeUpForCausalLM").supported is False
    assert reg.tool_parsers is not None and "llama3_json" in reg.tool_parsers


@pytest.mark.anyio
async def test_a_slow_first_probe_answers_from_the_bundled_list_meanwhile(tmp_path: Path) -> None:
    script = _fake_vllm(tmp_path, "7.0.0", ["OnlyArch"], calls=tmp_path / "calls", delay=2)
    settings = Settings.model_validate({"engine": {"vllm_bin": str(script)}})
    disc = Discovery(settings, Database(":memory:"), env={})
    early = await disc.registry(wait_s=0.3)
    assert early.bundled and "still being asked" in early.source
    real = await disc.registry(wait_s=20)  # the same probe, not a second one
    assert not real.bundled and real.archs == frozenset({"OnlyArch"})
    probes = [ln for ln in (tmp_path / "calls").read_text().splitlines() if "import json" in ln]
    assert len(probes) == 1
    assert await disc.registry(wait_s=0) is real  # remembered for the daemon's life
