from __future__ import annotations

from pathlib import Path

import pytest

from vllm_mcp.supervisor.engine_ops import GAUGE_LEVEL, sleep_gauge

PAGES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"


@pytest.mark.parametrize(
    ("page", "state"),
    [
        ("vllm-0.32.0-idle.txt", "awake"),
        ("vllm-0.32.0-loaded.txt", "awake"),
        ("vllm-0.32.0-asleep.txt", "weights_offloaded"),
    ],
)
def test_sleep_gauge_reads_the_state_of_captured_pages(page: str, state: str) -> None:
    assert sleep_gauge((PAGES / page).read_text()) == state
    assert state in GAUGE_LEVEL


def test_no_gauge_means_no_state() -> None:
    assert sleep_gauge("# nothing here\n") is None
