"""P8 — memory-estimate accuracy: predicted vs reported KV capacity on real vLLM.

For each configuration of ``tests/optimizer/accuracy.py`` (KV bytes, float32 vs bfloat16, tiny-model
variants with other layer / KV-head / head-size counts, another block size) the real ``vllm serve``
of the test bed is started, its ``CPU KV cache size: N tokens`` line read, and compared with the
estimator's prediction for the same argv. One row per configuration: the absolute error in
percent (goal ≤ 3%), with predicted and reported tokens in the note. Sequential starts, each
stopped (whole process group) before the next; ~30 s per start on a busy 2-core box.

A GPU run would add a row per config from ``GPU KV cache size`` the same way; the test bed here
has none, so the GPU-only terms (activation peak, CUDA graphs) are checked against vLLM's log
through calibration, not here.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench.harness import REPO, Entry, Goal, Params, Row, Skip

GOAL_PCT = 3.0


def run(params: Params) -> list[Row]:
    if str(REPO) not in sys.path:  # the cases and runner live beside the test that uses them
        sys.path.insert(0, str(REPO))
    from tests import testbed
    from tests.optimizer.accuracy import CASES, run_cases, table

    missing = [str(p) for p in (testbed.vllm_bin(), testbed.tiny_model() / "config.json") if not p.exists()]
    if missing:
        raise Skip(f"real-vLLM test bed missing: {', '.join(missing)} (run `make testbed`)")
    cases = CASES[: int(params["cases"])] if int(params["cases"]) > 0 else CASES
    with tempfile.TemporaryDirectory(prefix="bench-optimizer-accuracy-") as tmp:
        results = run_cases(Path(tmp), cases)
    print(table(results), file=sys.stderr)
    rows = []
    for r in results:
        err = abs(r.error) * 100 if r.error is not None else float("inf")
        rows.append(
            Row(
                ENTRY.name,
                f"KV tokens |error|: {r.case.name}",
                err,
                "%",
                goal=Goal(GOAL_PCT, "<="),
                note=f"predicted {r.predicted_tokens:,}, reported {r.report.kv_cache_tokens or 0:,} tokens",
            )
        )
    return rows


ENTRY = Entry(
    name="optimizer-accuracy",
    description="P8: estimator KV capacity vs what real vLLM logs, per configuration (goal ≤ 3%)",
    run=run,
    defaults={"cases": 0},
)
