"""Fixtures of the discovery tests: the model world (built once) and an open-file recorder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.discovery import world as world_mod
from tests.testbed import tiny_model

_recording: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _recording and isinstance(args[0], str | Path):
        _recording[-1].append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: it only records inside `opened_files`


@pytest.fixture
def opened_files() -> Iterator[list[str]]:
    """Every file path Python opens (any thread) while the test runs."""
    opened: list[str] = []
    _recording.append(opened)
    try:
        yield opened
    finally:
        _recording.remove(opened)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> world_mod.World:
    tiny = tiny_model()
    return world_mod.build(
        tmp_path_factory.mktemp("world"), tiny if (tiny / "config.json").exists() else None
    )
