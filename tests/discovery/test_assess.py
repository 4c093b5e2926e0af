"""Capability assessment: registry support (labelled source), parser suggestions limited to the
installed vLLM's names, and fit per GPU through the resource optimizer's estimator."""

from __future__ import annotations

import pytest

from tests.discovery.world import World
from vllm_mcp.api.discovery import DiscoveredModel
from vllm_mcp.core.gpu_catalog import GiB, parse_inventory
from vllm_mcp.discovery.assess import ESTIMATOR, assess, declared_gpus
from vllm_mcp.discovery.registry import BUNDLED_LABEL, Registry, bundled
from vllm_mcp.discovery.scanner import ScanRoot, scan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture(scope="module")
def models(world: World) -> dict[str, DiscoveredModel]:
    out = scan([ScanRoot(world.hf, "hf-cache"), ScanRoot(world.local, "local")], {})
    return {e.id: e for e in out.entries()}


def test_llama_on_an_h100_fits_its_full_context(models: dict[str, DiscoveredModel]) -> None:
    result = assess(models[LLAMA], bundled(), parse_inventory("1xH100-80GB"), utilization=0.9)
    assert result.registry.supported is True and result.registry.source.startswith(BUNDLED_LABEL)
    assert result.fit_method == ESTIMATOR
    fit = result.fits[0]
    assert fit.fits and fit.max_context_tokens == 131072 and "KV-cache tokens" in fit.note


def test_a_24_gib_gpu_fits_only_a_shorter_context_and_8_gib_none(models: dict[str, DiscoveredModel]) -> None:
    result = assess(models[LLAMA], bundled(), declared_gpus([24, 8]), utilization=0.9)
    big, small = result.fits
    assert big.fits and big.max_context_tokens is not None and 0 < big.max_context_tokens < 131072
    assert big.max_context_tokens % 256 == 0 and "only with max_model_len" in big.note
    assert not small.fits and small.max_context_tokens is None and small.note
    assert big.memory_bytes == 24 * GiB and big.usable_bytes == int(24 * GiB * 0.9)


def test_tensor_parallel_row_when_no_single_gpu_fits(models: dict[str, DiscoveredModel]) -> None:
    result = assess(
        models["mistralai/Mixtral-8x7B-Instruct-v0.1"],
        bundled(),
        parse_inventory("4xH100-80GB"),
        utilization=0.9,
    )
    assert [f.fits for f in result.fits] == [False] * 4 + [True]
    assert result.fits[-1].gpu.startswith("4 x H100")


def test_parsers_are_suggested_only_when_vllm_has_them(models: dict[str, DiscoveredModel]) -> None:
    fp8 = models["Qwen/Qwen3-8B-FP8"]
    result = assess(fp8, bundled(), [], utilization=0.9)
    assert (result.tool_call_parser, result.reasoning_parser) == ("hermes", "qwen3")
    assert result.suggested_flags == [
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--reasoning-parser",
        "qwen3",
    ]
    old = Registry(
        frozenset({"Qwen3ForCausalLM"}),
        frozenset({"mistral"}),
        frozenset(),
        "vLLM 0.1 registry",
        "0.1",
        bundled=False,
    )
    result = assess(fp8, old, [], utilization=0.9)
    assert (result.tool_call_parser, result.reasoning_parser, result.suggested_flags) == (None, None, [])
    assert result.registry.supported is True and result.registry.bundled is False
    mixtral = assess(models["mistralai/Mixtral-8x7B-Instruct-v0.1"], bundled(), [], utilization=0.9)
    assert mixtral.tool_call_parser is None  # its template renders no tools


def test_made_up_architecture_is_not_supported(models: dict[str, DiscoveredModel]) -> None:
    fake = models[LLAMA].model_copy(deep=True)
    assert fake.meta is not None
    import dataclasses

    fake = fake.model_copy(update={"meta": dataclasses.replace(fake.meta, architecture="MadeUpForCausalLM")})
    assert assess(fake, bundled(), [], utilization=0.9).registry.supported is False


def test_gguf_lora_and_broken(models: dict[str, DiscoveredModel], world: World) -> None:
    gguf = assess(
        models["bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf"],
        bundled(),
        declared_gpus([8]),
        utilization=0.9,
    )
    assert (
        gguf.registry.supported is True and gguf.fits[0].fits and any("--tokenizer" in n for n in gguf.notes)
    )
    lora = assess(models["acme/llama-3.1-8b-sql-lora"], bundled(), declared_gpus([8]), utilization=0.9)
    assert lora.suggested_flags == ["--enable-lora", "--max-lora-rank", "16"] and lora.fits == []
    assert lora.registry.supported is None
    broken = assess(models["broken-org/dangling-model"], bundled(), declared_gpus([80]), utilization=0.9)
    assert broken.fits == [] and broken.fit_method == "not checked" and "broken" in broken.notes[0]


def test_weights_only_check_is_labelled(models: dict[str, DiscoveredModel]) -> None:
    import dataclasses

    llama = models[LLAMA]
    assert llama.meta is not None
    thin = llama.model_copy(update={"meta": dataclasses.replace(llama.meta, num_attention_heads=None)})
    result = assess(thin, bundled(), declared_gpus([24, 12]), utilization=0.9)
    assert result.fit_method.startswith("weights-only check") and "NOT counted" in result.fit_method
    assert [f.fits for f in result.fits] == [True, False]
