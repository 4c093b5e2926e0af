"""Build the test bed's tiny model, tokenizer and LoRA adapter — seeded, byte-identical on rerun.

No hub is reachable here, so tests build their own model. Run with the vLLM venv's Python
(it has torch, transformers, tokenizers and safetensors):

    .venv-vllm/bin/python scripts/build_tiny_model.py --out .testbed

Writes ``<out>/models/tiny-llama`` (LlamaForCausalLM, 2 layers, 4 heads, 2 KV heads, head dim 32,
vocab 2048, float32, tied embeddings, ChatML template) and ``<out>/loras/tiny-lora`` (PEFT
format, rank 8 on q_proj/v_proj). Variants for memory-accuracy tests take ``--variant
NAME:layers=4,kv_heads=4,dtype=bfloat16``. A manifest of sha256 sums makes a rerun with the same
spec a no-op (well under a second); ``--force`` rebuilds and must reproduce the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

BASE_SPEC: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 2048,
    "vocab_size": 2048,
    "dtype": "float32",
    "seed": 1234,
}
LORA_SPEC: dict[str, Any] = {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"], "std": 0.3, "seed": 99}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
WORDS = [
    "the",
    "model",
    "loads",
    "weights",
    "into",
    "memory",
    "and",
    "serves",
    "tokens",
    "to",
    "the",
    "agent",
    "while",
    "the",
    "scheduler",
    "keeps",
    "a",
    "lease",
    "on",
    "every",
    "request",
    "def",
    "return",
    "import",
    "class",
    "async",
    "await",
    "vllm",
    "gpu",
    "cache",
    "sleep",
    "wake",
    "switch",
    "load",
    "unload",
    "prompt",
    "completion",
    "python",
    "rust",
    "go",
    "function",
    "variable",
    "loop",
    "print",
    "hello",
    "world",
    "error",
    "retry",
    "timeout",
    "port",
    "socket",
]


def _corpus(seed: int, lines: int = 4000) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) for _ in range(lines)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_ok(folder: Path, spec: dict[str, Any]) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    data = json.loads(manifest.read_text())
    if data.get("spec") != spec:
        return False
    return all((folder / n).is_file() and _sha256(folder / n) == h for n, h in data.get("files", {}).items())


def _write_manifest(folder: Path, spec: dict[str, Any]) -> None:
    files = {
        p.name: _sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "manifest.json"
    }
    (folder / "manifest.json").write_text(
        json.dumps({"spec": spec, "files": files}, indent=2, sort_keys=True) + "\n"
    )


def build_tokenizer(folder: Path, spec: dict[str, Any]) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec["vocab_size"],
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(spec["seed"]), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=SPECIALS[:2],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = spec["max_position_embeddings"]
    fast.save_pretrained(str(folder))


def build_model(folder: Path, spec: dict[str, Any]) -> None:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(spec["seed"])
    dtype = getattr(torch, spec["dtype"])
    config = LlamaConfig(
        hidden_size=spec["hidden_size"],
        intermediate_size=spec["intermediate_size"],
        num_hidden_layers=spec["num_hidden_layers"],
        num_attention_heads=spec["num_attention_heads"],
        num_key_value_heads=spec["num_key_value_heads"],
        head_dim=spec["head_dim"],
        max_position_embeddings=spec["max_position_embeddings"],
        vocab_size=spec["vocab_size"],
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=3,
        torch_dtype=spec["dtype"],
    )
    model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(str(folder), safe_serialization=True)
    GenerationConfig(max_new_tokens=16, eos_token_id=2, pad_token_id=3, bos_token_id=0).save_pretrained(
        str(folder)
    )


def build_lora(folder: Path, base: Path, spec: dict[str, Any], model_spec: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(spec["seed"])
    hidden, layers = model_spec["hidden_size"], model_spec["num_hidden_layers"]
    out_dims = {
        "q_proj": model_spec["num_attention_heads"] * model_spec["head_dim"],
        "v_proj": model_spec["num_key_value_heads"] * model_spec["head_dim"],
    }
    tensors = {}
    for layer in range(layers):
        for target in spec["targets"]:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(spec["r"], hidden, generator=gen) * spec["std"]
            tensors[f"{prefix}.lora_B.weight"] = (
                torch.randn(out_dims[target], spec["r"], generator=gen) * spec["std"]
            )
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "base_model_name_or_path": str(base),
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": spec["r"],
        "lora_alpha": spec["alpha"],
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": spec["targets"],
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def build(out: Path, name: str, spec: dict[str, Any], force: bool) -> Path:
    folder = out / "models" / name
    if not force and _manifest_ok(folder, spec):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.is_file():
            old.unlink()
    build_tokenizer(folder, spec)
    build_model(folder, spec)
    _write_manifest(folder, spec)
    return folder


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = text.partition(":")
    spec = dict(BASE_SPEC)
    aliases = {
        "layers": "num_hidden_layers",
        "kv_heads": "num_key_value_heads",
        "heads": "num_attention_heads",
        "hidden": "hidden_size",
    }
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        key = aliases.get(key, key)
        if key not in spec:
            raise SystemExit(f"unknown variant key {key!r}; known: {sorted(spec)}")
        spec[key] = value if key == "dtype" else int(value)
    return name, spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".testbed"))
    parser.add_argument("--variant", action="append", default=[], help="extra model NAME:key=value,…")
    parser.add_argument("--force", action="store_true", help="rebuild even if unchanged")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    base = build(out, "tiny-llama", BASE_SPEC, args.force)
    lora = out / "loras" / "tiny-lora"
    lora_spec = {**LORA_SPEC, "base": str(base)}
    if args.force or not _manifest_ok(lora, lora_spec):
        build_lora(lora, base, LORA_SPEC, BASE_SPEC)
        _write_manifest(lora, lora_spec)
    for variant in args.variant:
        name, spec = parse_variant(variant)
        build(out, name, spec, args.force)
    print(f"tiny model: {base}\ntiny LoRA: {lora}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
