"""The model world the discovery tests scan: an HF cache with seven repos of different kinds, a
LoRA adapter, broken and half-downloaded entries, and a plain folder root (with the test bed's
tiny model linked in). Built once per module; every expected number is computed here from what
was written, or is a published figure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.discovery import modelgen as g
from tests.discovery import published as pub

LLAMA_REV_OLD = "0e9e39f249a16976918f6564b8830bc894c89659"
LLAMA_REV = "5206a32e0bd3067aef1ce90f5528ade7d866253f"
MIXTRAL_REV = "41bd4c9e7e4fb318ca40e721131d4933966c2cc1"
DEEPSEEK_REV = "85864749cd611b4353ce1decdb286193298f64c7"
AWQ_REV = "b25037543e9394b818fdfca67ab2a00ecc7dd641"
FP8_REV = "a29cae3e83d0e8ca26bbc2ddd3bca1a7e8e3ba2f"
GGUF_REV = "067b946cf014b7c697f3654f621d577a3e3afd1c"
LORA_REV = "1f0c4a5b6d7e8f90a1b2c3d4e5f60718293a4b5c"
DANGLING_REV = "ddddddddddddddddddddddddddddddddddddddd1"
PARTIAL_REV = "7ae557604adf67be50417f59c2c2f167def9a775"

LLAMA31_TEMPLATE = (
    "{{- bos_token }}{%- if tools is not none %}{%- set tools_in_user_message = true %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{%- if builtin_tools is defined or tools "
    "is not none %}{{- 'Environment: ipython\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if 'tool_calls' in message %}{{- '<|python_tag|>' }}"
    "{{- '{\"name\": \"' + message.tool_calls[0].function.name + '\"}' }}{%- endif %}{%- endfor %}"
)
MIXTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)
QWEN25_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}{%- for tool in tools %}"
    "{{- tool | tojson }}{%- endfor %}{{- '</tools>\\nreturn a json object within <tool_call></tool_call>"
    " XML tags' }}{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role }}"
    "{%- endfor %}"
)
QWEN3_TEMPLATE = QWEN25_TEMPLATE + (
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif %}"
)
DEEPSEEK_TEMPLATE = "{% for message in messages %}{{ 'User: ' + message['content'] }}{% endfor %}"


@dataclass
class World:
    hf: Path
    local: Path
    tiny: Path | None
    expect: dict[str, tuple[int, int]] = field(default_factory=dict)  # id → (params, bytes)


def _hf_model(
    cache: g.HfCache,
    repo: str,
    rev: str,
    config: dict,
    tensors: list[g.Tensor],
    shards: int,
    extra: dict[str, g.FileSpec] | None = None,
    refs: tuple[str, ...] = ("main",),
) -> tuple[int, int]:
    files: dict[str, g.FileSpec] = {"config.json": g.jbytes(config)}
    if shards == 1:
        files["model.safetensors"] = ("safetensors", tensors)
    else:
        parts = g.sharded(tensors, shards)
        files.update({name: ("safetensors", ts) for name, ts in parts.items()})
        files["model.safetensors.index.json"] = g.index_json(parts)
    files.update(extra or {})
    cache.add(repo, rev, files, refs=refs)
    return g.totals(tensors)


def build(base: Path, tiny_model: Path | None) -> World:
    cache = g.HfCache(base / "hf" / "hub")
    local = base / "models"
    world = World(cache.root, local, tiny_model)
    tok = lambda t: g.jbytes({"chat_template": t, "eos_token": "<eos>"})  # noqa: E731

    llama = g.llama_tensors(pub.LLAMA_31_8B_INSTRUCT)
    llama_files = {
        "tokenizer_config.json": tok(LLAMA31_TEMPLATE),
        "generation_config.json": g.jbytes(
            {"do_sample": True, "temperature": 0.6, "top_p": 0.9, "eos_token_id": [128001, 128009]}
        ),
    }
    # The older revision shares the weight blobs (dedup), as a real cache does.
    parts = g.sharded(llama, 4)
    shared = {n: f"{i:064x}" for i, n in enumerate(parts, start=1)}
    old_cfg = {**pub.LLAMA_31_8B_INSTRUCT, "transformers_version": "4.42.0"}
    for rev, cfg, refs in ((LLAMA_REV_OLD, old_cfg, ()), (LLAMA_REV, pub.LLAMA_31_8B_INSTRUCT, ("main",))):
        files: dict[str, g.FileSpec] = {
            "config.json": g.jbytes(cfg),
            **llama_files,
            "model.safetensors.index.json": g.index_json(parts),
        }
        files.update({n: ("safetensors", ts) for n, ts in parts.items()})
        cache.add("meta-llama/Llama-3.1-8B-Instruct", rev, files, refs=refs, blob_ids=shared)
    world.expect["meta-llama/Llama-3.1-8B-Instruct"] = g.totals(llama)
    world.expect[f"meta-llama/Llama-3.1-8B-Instruct@{LLAMA_REV_OLD}"] = g.totals(llama)

    world.expect["mistralai/Mixtral-8x7B-Instruct-v0.1"] = _hf_model(
        cache,
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        MIXTRAL_REV,
        pub.MIXTRAL_8X7B_INSTRUCT,
        g.mixtral_tensors(pub.MIXTRAL_8X7B_INSTRUCT),
        3,
        {"tokenizer_config.json": tok(MIXTRAL_TEMPLATE)},
    )
    world.expect["deepseek-ai/DeepSeek-V2-Lite-Chat"] = _hf_model(
        cache,
        "deepseek-ai/DeepSeek-V2-Lite-Chat",
        DEEPSEEK_REV,
        pub.DEEPSEEK_V2_LITE_CHAT,
        g.deepseek_v2_tensors(pub.DEEPSEEK_V2_LITE_CHAT),
        4,
        {"tokenizer_config.json": tok(DEEPSEEK_TEMPLATE)},
    )
    world.expect["Qwen/Qwen2.5-7B-Instruct-AWQ"] = _hf_model(
        cache,
        "Qwen/Qwen2.5-7B-Instruct-AWQ",
        AWQ_REV,
        pub.QWEN25_7B_INSTRUCT_AWQ,
        g.awq_tensors(pub.QWEN25_7B_INSTRUCT_AWQ),
        2,
        {"tokenizer_config.json": tok(QWEN25_TEMPLATE)},
    )
    world.expect["Qwen/Qwen3-8B-FP8"] = _hf_model(
        cache,
        "Qwen/Qwen3-8B-FP8",
        FP8_REV,
        pub.QWEN3_8B_FP8,
        g.fp8_block_tensors(pub.QWEN3_8B_FP8),
        2,
        {
            "chat_template.jinja": QWEN3_TEMPLATE,
            "generation_config.json": g.jbytes({"temperature": 0.6, "top_k": 20, "top_p": 0.95}),
        },
    )

    c1b = {**pub.LLAMA_32_1B, "tie_word_embeddings": True}
    gguf_tensors = g.llama_gguf_tensors(c1b)
    gguf_meta = {
        "general.architecture": "llama",
        "general.name": "Llama 3.2 1B Instruct",
        "general.file_type": 15,
        "llama.block_count": 16,
        "llama.context_length": 131072,
        "llama.embedding_length": 2048,
        "llama.feed_forward_length": 8192,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 8,
        "llama.attention.key_length": 64,
        "llama.attention.value_length": 64,
        "llama.rope.freq_base": 500000.0,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": [f"t{i}" for i in range(128256)],
        "tokenizer.chat_template": LLAMA31_TEMPLATE,
        "general.alignment": 32,
    }
    name = "Llama-3.2-1B-Instruct-Q4_K_M.gguf"
    cache.add("bartowski/Llama-3.2-1B-Instruct-GGUF", GGUF_REV, {name: ("gguf", (gguf_meta, gguf_tensors))})
    world.expect[f"bartowski/Llama-3.2-1B-Instruct-GGUF/{name}"] = (
        pub.LLAMA_32_1B_PARAMS,
        sum(g.gguf_tensor_bytes(d, t) for _, d, t in gguf_tensors),
    )

    lora = g.lora_tensors(32, 4096, 1024, 16)
    cache.add(
        "acme/llama-3.1-8b-sql-lora",
        LORA_REV,
        {
            "adapter_config.json": g.jbytes(
                {
                    "base_model_name_or_path": "meta-llama/Llama-3.1-8B-Instruct",
                    "peft_type": "LORA",
                    "r": 16,
                    "lora_alpha": 32,
                    "target_modules": ["q_proj", "v_proj"],
                    "task_type": "CAUSAL_LM",
                }
            ),
            "adapter_model.safetensors": ("safetensors", lora),
        },
    )
    world.expect["acme/llama-3.1-8b-sql-lora"] = g.totals(lora)

    # Broken: the config blob was deleted (dangling symlink).
    snap = cache.add(
        "broken-org/dangling-model",
        DANGLING_REV,
        {
            "config.json": g.jbytes(pub.LLAMA_31_8B_INSTRUCT),
            "model.safetensors": (
                "safetensors",
                g.llama_tensors({**pub.LLAMA_32_1B, "num_hidden_layers": 1}),
            ),
        },
    )
    (snap / "config.json").resolve().unlink()
    # Half downloaded: config is in, the weights blob is still .incomplete.
    cache.add(
        "Qwen/Qwen2.5-0.5B-Instruct",
        PARTIAL_REV,
        {"config.json": g.jbytes({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2"})},
    )
    (cache.repo("Qwen/Qwen2.5-0.5B-Instruct") / "blobs" / (f"{7:064x}.incomplete")).write_bytes(b"\0" * 4096)

    # Plain folders: unreadable JSON, the test bed's tiny model and LoRA (symlinked in), a GGUF folder.
    (local / "team" / "bad-json-model").mkdir(parents=True)
    (local / "team" / "bad-json-model" / "config.json").write_text('{"architectures": ["LlamaForCausalLM",')
    (local / "team" / "bad-json-model" / "model.safetensors").write_bytes(b"")
    if tiny_model is not None:
        (local / "tiny-llama").symlink_to(tiny_model, target_is_directory=True)
        (local / "tiny-lora").symlink_to(
            tiny_model.parent.parent / "loras" / "tiny-lora", target_is_directory=True
        )
    (local / "notes").mkdir()
    (local / "notes" / "config.json").write_text('{"theme": "dark"}')  # not a model: ignored
    return world
