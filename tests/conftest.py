"""Shared fixtures. The real vLLM engine is started once per session and shared by every test
that only reads from it or leaves it as it found it (sleep → wake, load → unload LoRA)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed import RunningVllm, running_vllm


@pytest.fixture(scope="session")
def real_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVllm]:
    """The tiny model served by real vLLM (LoRA enabled, dev endpoints on), shared per session."""
    with running_vllm(tmp_path_factory.mktemp("real-vllm")) as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path
