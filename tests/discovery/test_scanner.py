"""The scanner over the test world: every kind of model reported correctly, with exact weights;
broken entries reported, never raised; a rescan with nothing changed reads no file."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.discovery import published as pub
from tests.discovery import world as w
from tests.discovery.world import World
from vllm_mcp.api.discovery import DiscoveredModel
from vllm_mcp.core.model_meta import QuantInfo
from vllm_mcp.discovery.scanner import ScanRoot, scan

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
GGUF_ID = "bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf"


def _roots(world: World) -> list[ScanRoot]:
    return [ScanRoot(world.hf, "hf-cache"), ScanRoot(world.local, "local")]


@pytest.fixture(scope="module")
def found(world: World) -> dict[str, DiscoveredModel]:
    outcome = scan(_roots(world), {})
    return {e.id: e for e in outcome.entries()}


def test_every_weight_total_is_exact(found: dict[str, DiscoveredModel], world: World) -> None:
    for model_id, (params, nbytes) in world.expect.items():
        meta = found[model_id].meta
        assert meta is not None, model_id
        assert (meta.param_count, meta.weight_bytes) == (params, nbytes), model_id


def test_published_parameter_counts(found: dict[str, DiscoveredModel]) -> None:
    def params(model_id: str) -> int | None:
        meta = found[model_id].meta
        return meta.param_count if meta else None

    assert params(LLAMA) == pub.LLAMA_31_8B_PARAMS
    assert params("mistralai/Mixtral-8x7B-Instruct-v0.1") == pub.MIXTRAL_8X7B_PARAMS
    assert params("deepseek-ai/DeepSeek-V2-Lite-Chat") == pub.DEEPSEEK_V2_LITE_PARAMS
    assert params(GGUF_ID) == pub.LLAMA_32_1B_PARAMS
    llama = found[LLAMA].meta
    assert llama is not None and llama.weight_bytes == 2 * pub.LLAMA_31_8B_PARAMS  # all bf16


def test_dense_gqa_llama_from_sharded_index(found: dict[str, DiscoveredModel]) -> None:
    m = found[LLAMA]
    assert (m.kind, m.source, m.status, m.problems) == ("model", "hf-cache", "ok", [])
    assert (m.repo_id, m.revision, m.refs) == (LLAMA, w.LLAMA_REV, ["main"])
    assert m.meta is not None and m.meta.num_kv_heads == 8 and m.meta.context_length == 131072
    assert m.chat_template is not None and m.chat_template.present and m.chat_template.mentions_tools
    assert m.chat_template.tool_call_format == "JSON function calls (Llama 3.1+)"
    assert m.generation is not None and (m.generation.temperature, m.generation.top_p) == (0.6, 0.9)
    assert m.path.endswith(f"snapshots/{w.LLAMA_REV}")


def test_other_revisions_get_their_own_id(found: dict[str, DiscoveredModel]) -> None:
    old = found[f"{LLAMA}@{w.LLAMA_REV_OLD}"]
    assert old.refs == [] and old.status == "ok" and old.revision == w.LLAMA_REV_OLD


def test_moe_mla_awq_fp8(found: dict[str, DiscoveredModel]) -> None:
    mixtral = found["mistralai/Mixtral-8x7B-Instruct-v0.1"].meta
    assert mixtral is not None and mixtral.moe is not None and mixtral.moe.num_experts == 8
    ds = found["deepseek-ai/DeepSeek-V2-Lite-Chat"].meta
    assert ds is not None and ds.mla is not None and ds.mla.kv_lora_rank == 512
    assert ds.context_length == 163840
    awq = found["Qwen/Qwen2.5-7B-Instruct-AWQ"]
    assert awq.meta is not None and awq.meta.quantization == QuantInfo("awq", 4, 128, "gemm")
    assert (
        awq.chat_template is not None
        and awq.chat_template.tool_call_format == "<tool_call> JSON (Hermes/Qwen)"
    )
    fp8 = found["Qwen/Qwen3-8B-FP8"]
    assert fp8.meta is not None and fp8.meta.quantization is not None
    assert fp8.meta.quantization.method == "fp8" and fp8.meta.dtype == "bfloat16"
    assert fp8.chat_template is not None and fp8.chat_template.source == "chat_template.jinja"
    assert fp8.chat_template.reasoning_format is not None and "Qwen3" in fp8.chat_template.reasoning_format
    assert fp8.generation is not None and fp8.generation.top_k == 20


def test_gguf_file_in_a_repo(found: dict[str, DiscoveredModel]) -> None:
    m = found[GGUF_ID]
    assert (m.kind, m.status, m.weights_format) == ("gguf", "ok", "gguf")
    meta = m.meta
    assert meta is not None and meta.architecture == "LlamaForCausalLM"
    assert meta.quantization == QuantInfo("gguf", detail="Q4_K_M")
    assert (meta.num_layers, meta.num_kv_heads, meta.head_dim, meta.vocab_size) == (16, 8, 64, 128256)
    assert meta.context_length == 131072
    assert m.chat_template is not None and m.chat_template.present


def test_lora_adapter_and_its_base(found: dict[str, DiscoveredModel]) -> None:
    m = found["acme/llama-3.1-8b-sql-lora"]
    assert m.kind == "lora" and m.status == "ok" and m.lora is not None
    assert (m.lora.base_model, m.lora.rank, m.lora.alpha) == (LLAMA, 16, 32.0)
    assert m.lora.target_modules == ["q_proj", "v_proj"]


def test_broken_and_incomplete_entries_are_reported(found: dict[str, DiscoveredModel], world: World) -> None:
    dangling = found["broken-org/dangling-model"]
    assert dangling.status == "broken"
    assert any("dangling symlink config.json" in p for p in dangling.problems)
    partial = found["Qwen/Qwen2.5-0.5B-Instruct"]
    assert partial.status == "incomplete"
    assert any(".incomplete" in p for p in partial.problems)
    bad = found[str(world.local / "team" / "bad-json-model")]
    assert bad.status == "broken" and any("config.json is not valid JSON" in p for p in bad.problems)
    assert str(world.local / "notes") not in found  # a config.json that is no model's


def test_tiny_testbed_model_and_lora(found: dict[str, DiscoveredModel], world: World) -> None:
    if world.tiny is None:
        pytest.skip("test bed not built")
    tiny = found[str(world.local / "tiny-llama")]
    assert tiny.source == "local" and tiny.status == "ok" and tiny.meta is not None
    # Tied Llama: embeddings + 2 x (q,k,v,o + gate,up,down + 2 norms) + final norm, float32.
    params = 2048 * 128 + 2 * (2 * 128 * 128 + 2 * 64 * 128 + 3 * 256 * 128 + 2 * 128) + 128
    assert (tiny.meta.param_count, tiny.meta.weight_bytes) == (params, 4 * params)
    assert tiny.meta.architecture == "LlamaForCausalLM" and tiny.meta.dtype == "float32"
    assert tiny.chat_template is not None and tiny.chat_template.source == "chat_template.jinja"
    lora = found[str(world.local / "tiny-lora")]
    assert lora.kind == "lora" and lora.lora is not None and lora.lora.rank == 8


def test_missing_root_is_reported_not_raised(tmp_path: Path) -> None:
    outcome = scan([ScanRoot(tmp_path / "nope", "local")], {})
    assert outcome.entries() == [] and outcome.roots[0].exists is False


def test_rescan_with_nothing_changed_reads_no_file(world: World, opened_files: list[str]) -> None:
    first = scan(_roots(world), {})
    opened_files.clear()
    again = scan(_roots(world), first.rows)
    assert opened_files == []
    assert again.changed == [] and again.removed == []
    assert again.reused == len(first.rows)
    assert [e.id for e in again.entries()] == [e.id for e in first.entries()]


def test_rescan_rereads_only_the_changed_unit(tmp_path: Path, world: World, opened_files: list[str]) -> None:
    root = tmp_path / "models"
    shutil.copytree(world.local / "team", root / "team")
    (root / "m2").mkdir()
    (root / "m2" / "config.json").write_text('{"architectures": ["X"]}')
    first = scan([ScanRoot(root, "local")], {})
    cfg = root / "team" / "bad-json-model" / "config.json"
    cfg.write_text('{"architectures": ["LlamaForCausalLM"]}')
    os.utime(cfg, ns=(time.time_ns(), time.time_ns() + 10**9))
    opened_files.clear()
    again = scan([ScanRoot(root, "local")], first.rows)
    assert [r.unit for r in again.changed] == [str(root / "team" / "bad-json-model")]
    assert all("bad-json-model" in p for p in opened_files)
    fixed = next(e for e in again.entries() if e.name == "bad-json-model")
    assert fixed.meta is not None and fixed.meta.architecture == "LlamaForCausalLM"
    shutil.rmtree(root / "m2")
    third = scan([ScanRoot(root, "local")], again.rows)
    assert third.removed == [str(root / "m2")] and third.changed == []
