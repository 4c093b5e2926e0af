"""How long parsing one vLLM /metrics page takes: ``parse_metrics`` (the full typed snapshot)
against prometheus-client's text parser (generic samples only) on the same captured page."""

from __future__ import annotations

import functools
from pathlib import Path

from bench.harness import REPO, Entry, Goal, Params, Row, Skip, median_time

FIXTURES = REPO / "tests" / "fixtures" / "metrics"
GOAL_MS = 2.0


def run(params: Params) -> list[Row]:
    from prometheus_client.parser import text_string_to_metric_families

    from vllm_mcp.engine.metrics import parse_metrics

    runs, warmup = int(params["runs"]), int(params["warmup"])
    rows = []
    for kind in str(params["pages"]).split(","):
        page = _page(kind.strip())
        text = page.read_text()
        ours = median_time(functools.partial(parse_metrics, text, at=0.0), runs, warmup)
        theirs = median_time(lambda: list(text_string_to_metric_families(text)), runs, warmup)  # noqa: B023
        rows.append(
            Row(
                entry=ENTRY.name,
                metric=f"parse_metrics, {kind.strip()} page",
                ours=ours * 1e3,
                baseline=theirs * 1e3,
                unit="ms",
                goal=Goal(GOAL_MS),
                note=f"{page.name}: {len(text.encode()) / 1000:.1f} KB, {text.count(chr(10))} lines; "
                f"median of {runs}, baseline = prometheus-client",
            )
        )
    return rows


def _page(kind: str) -> Path:
    matches = sorted(FIXTURES.glob(f"vllm-*-{kind}.txt"))
    if not matches:
        raise Skip(f"no captured page vllm-*-{kind}.txt in {FIXTURES} (scripts/capture_metrics.py)")
    return matches[-1]


ENTRY = Entry(
    name="metrics-parse",
    description="parse time of a captured vLLM /metrics page, ours vs prometheus-client",
    run=run,
    defaults={"runs": 200, "warmup": 20, "pages": "loaded,asleep"},
)
