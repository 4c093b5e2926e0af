"""Learning from vLLM's own reports: prediction vs report per component, and the correction. Pure.

After each start the optimizer records, per component, what the estimator predicted and what
vLLM reported (``optimizer.calibration``). The correction for a model + vLLM version is the
median report/prediction ratio of its last ``window`` starts, per component:

- ``weights``   — "Model loading took X GiB" vs the predicted weights per GPU;
- ``graph``     — CUDA graph capture memory vs the graph heuristic (GPU, not eager);
- ``residual``  — what the profiler left out of the KV pool once weights and graphs are taken
  off (activation peak + framework overhead), on starts sized by gpu_memory_utilization;
- ``kv_tokens`` — reported vs predicted KV tokens on starts with a fixed pool
  (kv_cache_memory_bytes), where any error is the per-token formula's own.

Ratios are clamped to [0.25, 4] so one garbled log line cannot wreck later estimates.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from vllm_mcp.core.vram import Correction

__all__ = ["Observation", "correction_from", "relative_error"]

RATIO_BOUNDS = (0.25, 4.0)


@dataclass(frozen=True)
class Observation:
    """One start: the raw (uncorrected) prediction next to what vLLM reported."""

    predicted_kv_tokens: int
    reported_kv_tokens: int | None
    predicted_weights_bytes: int
    reported_weights_bytes: int | None = None
    predicted_graph_bytes: int = 0
    reported_graph_bytes: int | None = None
    predicted_residual_bytes: int = 0
    reported_residual_bytes: int | None = None
    fixed_pool: bool = False

    def errors(self) -> dict[str, float | None]:
        """Signed relative error of each component: (predicted − reported) / reported."""
        return {
            "kv_tokens": relative_error(self.predicted_kv_tokens, self.reported_kv_tokens),
            "weights": relative_error(self.predicted_weights_bytes, self.reported_weights_bytes),
            "graph": relative_error(self.predicted_graph_bytes, self.reported_graph_bytes),
            "residual": relative_error(self.predicted_residual_bytes, self.reported_residual_bytes),
        }


def relative_error(predicted: int | float, reported: int | float | None) -> float | None:
    if reported is None or reported <= 0:
        return None
    return (predicted - reported) / reported


def _ratio(predicted: int, reported: int | None) -> float | None:
    if reported is None or reported <= 0 or predicted <= 0:
        return None
    low, high = RATIO_BOUNDS
    return min(max(reported / predicted, low), high)


def _median(values: Sequence[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else 1.0


def correction_from(observations: Sequence[Observation], window: int = 5) -> Correction:
    """The correction from the most recent ``window`` observations (newest last)."""
    recent = list(observations)[-window:] if window > 0 else []
    if not recent:
        return Correction()
    return Correction(
        weights=_median([_ratio(o.predicted_weights_bytes, o.reported_weights_bytes) for o in recent]),
        graph=_median([_ratio(o.predicted_graph_bytes, o.reported_graph_bytes) for o in recent]),
        residual=_median(
            [
                _ratio(o.predicted_residual_bytes, o.reported_residual_bytes)
                for o in recent
                if not o.fixed_pool
            ]
        ),
        kv_tokens=_median(
            [_ratio(o.predicted_kv_tokens, o.reported_kv_tokens) for o in recent if o.fixed_pool]
        ),
        samples=len(recent),
    )
