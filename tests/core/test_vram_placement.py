"""Placement: several models on declared GPUs, sized with kv_cache_memory_bytes to share them."""

from __future__ import annotations

import pytest

from vllm_mcp.core.gpu_catalog import GiB, parse_inventory
from vllm_mcp.core.model_catalog import reference_model
from vllm_mcp.core.model_dims import ModelDims
from vllm_mcp.core.placement import PlacementPlan, PlacementRequest, plan_placement
from vllm_mcp.errors import InvalidRequest

TWO_H100 = parse_inventory("2xH100-80GB")
SAFETY = 2 * GiB


def ref(name: str) -> ModelDims:
    dims = reference_model(name)
    assert dims is not None
    return dims


FOUR = [
    PlacementRequest("coder", ref("qwen2.5-coder-32b-instruct"), 16_384, 2),
    PlacementRequest("llama8", ref("llama-3.1-8b"), 32_768, 4),
    PlacementRequest("qwen7", ref("qwen2.5-7b-instruct"), 32_768, 4),
    PlacementRequest("small", ref("llama-3.2-1b"), 8192, 8),
]


def assert_valid(plan: PlacementPlan) -> None:
    used = [0] * len(plan.devices)
    for a in plan.assignments:
        assert len(set(a.gpus)) == len(a.gpus) == a.config.tensor_parallel_size
        assert a.config.kv_cache_memory_bytes is not None  # sized to share, never a memory fraction
        assert a.config.gpu_memory_utilization is None
        assert a.estimate.kv.max_concurrency >= 1
        for g in a.gpus:
            used[g] += a.bytes_per_gpu
    for device, total, left in zip(plan.devices, used, plan.free_after, strict=True):
        assert total + SAFETY <= device.memory_total_bytes
        assert left == device.memory_total_bytes - SAFETY - total


def test_four_models_on_two_80gb_gpus_yield_a_valid_plan() -> None:
    plan = plan_placement(FOUR, TWO_H100, safety_margin_bytes=SAFETY)
    assert plan.fits
    assert [a.name for a in plan.assignments] == ["coder", "llama8", "qwen7", "small"]
    assert_valid(plan)
    by_name = {a.name: a for a in plan.assignments}
    # each KV pool holds exactly its target: concurrency × context tokens
    assert by_name["llama8"].estimate.kv.tokens == 4 * 32_768
    assert by_name["coder"].estimate.kv.tokens == 2 * 16_384
    # largest first, best fit: the 32B model takes a GPU, the rest share the other
    assert by_name["coder"].gpus != by_name["llama8"].gpus


def test_an_impossible_set_says_what_does_not_fit_and_the_smallest_change() -> None:
    too_much = [*FOUR, PlacementRequest("long", ref("llama-3.2-3b"), 131_072, 2)]
    plan = plan_placement(too_much, TWO_H100, safety_margin_bytes=SAFETY)
    assert not plan.fits
    assert_valid(plan)
    miss = plan.unplaced[0]
    assert "needs" in miss.reason and "the most free on one GPU is" in miss.reason
    assert miss.fixes, "an unplaced model must come with a change that would place it"
    assert [f.cost for f in miss.fixes] == sorted(f.cost for f in miss.fixes)
    assert {f.kind for f in miss.fixes} >= {"add_gpus"}
    # set-wide: the smallest change to any one model (or the GPUs), never "drop one" first
    assert [c.cost for c in plan.changes] == sorted(c.cost for c in plan.changes)
    assert plan.changes[0].kind != "drop"
    assert {"shrink", "precision", "add_gpus", "drop"} <= {c.kind for c in plan.changes}
    # every change really fits: apply each and plan again
    for fix in plan.changes:
        requests = [fix.request if fix.request and r.name == fix.target else r for r in too_much]
        requests = [r for r in requests if r.name != fix.drop]
        devices = parse_inventory(f"{2 + fix.add_gpus}xH100-80GB")
        assert plan_placement(requests, devices, safety_margin_bytes=SAFETY).fits, fix.description
    # per model: every fix places the unplaced one beside the others as they were placed
    placed = [r for r in too_much if r.name in {a.name for a in plan.assignments}]
    for fix in miss.fixes:
        requests = [r for r in placed if r.name != fix.drop]
        requests.append(fix.request or next(r for r in too_much if r.name == miss.name))
        devices = parse_inventory(f"{2 + fix.add_gpus}xH100-80GB")
        assert plan_placement(requests, devices, safety_margin_bytes=SAFETY).fits, fix.description


def test_a_model_larger_than_every_gpu_is_split_over_tensor_parallel_ranks() -> None:
    plan = plan_placement([PlacementRequest("70b", ref("llama-3.1-70b"), 8192, 1)], TWO_H100)
    (a,) = plan.assignments
    assert a.gpus == (0, 1) and a.config.tensor_parallel_size == 2


def test_a_70b_that_cannot_fit_asks_for_more_gpus() -> None:
    plan = plan_placement([PlacementRequest("70b", ref("llama-3.1-70b"), 32_768, 8)], TWO_H100)
    (miss,) = plan.unplaced
    assert "on each of 2 GPU(s)" in miss.reason
    assert [f.description for f in miss.fixes if f.kind == "add_gpus"] == ["add 2× H100-80GB"]


def test_bad_placement_requests_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="distinct"):
        plan_placement([FOUR[0], FOUR[0]], TWO_H100)
    with pytest.raises(InvalidRequest, match="no devices"):
        plan_placement(FOUR, ())
