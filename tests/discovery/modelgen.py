"""Build real model files for discovery tests: safetensors and GGUF files whose headers declare
the real shapes of published models, with the data region left sparse (a 16 GB checkpoint costs
no disk), plus the Hugging Face cache layout (blobs, refs, snapshots with relative symlinks).

Tensor lists follow each architecture's real parameter names and shapes, so summing them gives
the published parameter counts (checked by the tests); the readers under test never see these
lists, only the bytes written here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

Tensor = tuple[str, str, list[int]]  # (name, safetensors dtype, shape)

DTYPE_SIZE = {"F64": 8, "F32": 4, "BF16": 2, "F16": 2, "F8_E4M3": 1, "I32": 4, "I8": 1, "U8": 1}


def nbytes(t: Tensor) -> int:
    return math.prod(t[2]) * DTYPE_SIZE[t[1]]


def totals(tensors: Iterable[Tensor]) -> tuple[int, int]:
    """(parameters, bytes) of a tensor list — what a correct reader must report."""
    items = list(tensors)
    return sum(math.prod(t[2]) for t in items), sum(nbytes(t) for t in items)


# -- safetensors --------------------------------------------------------------------------------


def write_safetensors(path: Path, tensors: list[Tensor], metadata: dict[str, str] | None = None) -> None:
    """A valid safetensors file; the data region is sparse (reads back as zeros)."""
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape in tensors:
        size = math.prod(shape) * DTYPE_SIZE[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format pads the header to 8 bytes with spaces
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        fh.truncate(8 + len(blob) + offset)


def sharded(tensors: list[Tensor], shards: int) -> dict[str, list[Tensor]]:
    """Split a checkpoint the way HF does: model-0000i-of-0000n.safetensors, in order."""
    per = math.ceil(len(tensors) / shards)
    return {
        f"model-{i + 1:05d}-of-{shards:05d}.safetensors": tensors[i * per : (i + 1) * per]
        for i in range(shards)
    }


def index_json(files: Mapping[str, list[Tensor]]) -> bytes:
    weight_map = {t[0]: name for name, ts in files.items() for t in ts}
    total = sum(nbytes(t) for ts in files.values() for t in ts)
    return json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2).encode()


# -- architectures (published names and shapes) -------------------------------------------------


def _attn_dims(c: dict[str, Any]) -> tuple[int, int, int, int]:
    h, nh = c["hidden_size"], c["num_attention_heads"]
    return h, nh, c.get("num_key_value_heads", nh), c.get("head_dim") or h // nh


def llama_tensors(
    c: dict[str, Any], dtype: str = "BF16", *, qkv_bias: bool = False, qk_norm: bool = False
) -> list[Tensor]:
    """Llama, Qwen2 (``qkv_bias``) and Qwen3 (``qk_norm``) dense decoders."""
    h, nh, nkv, hd = _attn_dims(c)
    inter, vocab = c["intermediate_size"], c["vocab_size"]
    out: list[Tensor] = [("model.embed_tokens.weight", dtype, [vocab, h])]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", dtype, [nh * hd, h]),
            (p + "self_attn.k_proj.weight", dtype, [nkv * hd, h]),
            (p + "self_attn.v_proj.weight", dtype, [nkv * hd, h]),
            (p + "self_attn.o_proj.weight", dtype, [h, nh * hd]),
            (p + "mlp.gate_proj.weight", dtype, [inter, h]),
            (p + "mlp.up_proj.weight", dtype, [inter, h]),
            (p + "mlp.down_proj.weight", dtype, [h, inter]),
            (p + "input_layernorm.weight", dtype, [h]),
            (p + "post_attention_layernorm.weight", dtype, [h]),
        ]
        if qkv_bias:
            out += [
                (p + f"self_attn.{x}_proj.bias", dtype, [n * hd])
                for x, n in (("q", nh), ("k", nkv), ("v", nkv))
            ]
        if qk_norm:
            out += [
                (p + "self_attn.q_norm.weight", dtype, [hd]),
                (p + "self_attn.k_norm.weight", dtype, [hd]),
            ]
    out.append(("model.norm.weight", dtype, [h]))
    if not c.get("tie_word_embeddings", False):
        out.append(("lm_head.weight", dtype, [vocab, h]))
    return out


def mixtral_tensors(c: dict[str, Any], dtype: str = "BF16") -> list[Tensor]:
    h, nh, nkv, hd = _attn_dims(c)
    inter, experts = c["intermediate_size"], c["num_local_experts"]
    out: list[Tensor] = [("model.embed_tokens.weight", dtype, [c["vocab_size"], h])]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", dtype, [nh * hd, h]),
            (p + "self_attn.k_proj.weight", dtype, [nkv * hd, h]),
            (p + "self_attn.v_proj.weight", dtype, [nkv * hd, h]),
            (p + "self_attn.o_proj.weight", dtype, [h, nh * hd]),
            (p + "block_sparse_moe.gate.weight", dtype, [experts, h]),
            (p + "input_layernorm.weight", dtype, [h]),
            (p + "post_attention_layernorm.weight", dtype, [h]),
        ]
        for j in range(experts):
            e = f"{p}block_sparse_moe.experts.{j}."
            out += [
                (e + "w1.weight", dtype, [inter, h]),
                (e + "w2.weight", dtype, [h, inter]),
                (e + "w3.weight", dtype, [inter, h]),
            ]
    out += [("model.norm.weight", dtype, [h]), ("lm_head.weight", dtype, [c["vocab_size"], h])]
    return out


def deepseek_v2_tensors(c: dict[str, Any], dtype: str = "BF16") -> list[Tensor]:
    """DeepSeek-V2 (MLA attention, q_lora_rank null; first_k_dense_replace dense layers, then MoE)."""
    h, nh = c["hidden_size"], c["num_attention_heads"]
    nope, rope, v, kv = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
    moe_i, experts = c["moe_intermediate_size"], c["n_routed_experts"]
    shared_i = moe_i * c["n_shared_experts"]
    out: list[Tensor] = [("model.embed_tokens.weight", dtype, [c["vocab_size"], h])]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", dtype, [nh * (nope + rope), h]),
            (p + "self_attn.kv_a_proj_with_mqa.weight", dtype, [kv + rope, h]),
            (p + "self_attn.kv_a_layernorm.weight", dtype, [kv]),
            (p + "self_attn.kv_b_proj.weight", dtype, [nh * (nope + v), kv]),
            (p + "self_attn.o_proj.weight", dtype, [h, nh * v]),
            (p + "input_layernorm.weight", dtype, [h]),
            (p + "post_attention_layernorm.weight", dtype, [h]),
        ]
        mlps = [("mlp.", c["intermediate_size"])]
        if i >= c["first_k_dense_replace"]:
            out.append((p + "mlp.gate.weight", dtype, [experts, h]))
            mlps = [(f"mlp.experts.{j}.", moe_i) for j in range(experts)] + [
                ("mlp.shared_experts.", shared_i)
            ]
        for prefix, inter in mlps:
            out += [
                (p + prefix + "gate_proj.weight", dtype, [inter, h]),
                (p + prefix + "up_proj.weight", dtype, [inter, h]),
                (p + prefix + "down_proj.weight", dtype, [h, inter]),
            ]
    out += [("model.norm.weight", dtype, [h]), ("lm_head.weight", dtype, [c["vocab_size"], h])]
    return out


def awq_tensors(c: dict[str, Any]) -> list[Tensor]:
    """An AWQ (GEMM, 4-bit, group 128) Qwen2 checkpoint: linear layers packed 8 per int32."""
    group = c["quantization_config"]["group_size"]
    out: list[Tensor] = []
    for name, dtype, shape in llama_tensors(c, "F16", qkv_bias=True):
        if name.endswith("_proj.weight"):
            o, i = shape
            base = name.removesuffix(".weight")
            out += [
                (base + ".qweight", "I32", [i, o // 8]),
                (base + ".qzeros", "I32", [i // group, o // 8]),
                (base + ".scales", "F16", [i // group, o]),
            ]
        else:
            out.append((name, dtype, shape))
    return out


def fp8_block_tensors(c: dict[str, Any]) -> list[Tensor]:
    """A block-FP8 (128x128) Qwen3 checkpoint: e4m3 linear weights plus float32 inverse scales."""
    bo, bi = c["quantization_config"]["weight_block_size"]
    out: list[Tensor] = []
    for name, dtype, shape in llama_tensors(c, "BF16", qk_norm=True):
        if name.endswith("_proj.weight") and not name.startswith("lm_head"):
            o, i = shape
            out += [
                (name, "F8_E4M3", shape),
                (name + "_scale_inv", "F32", [math.ceil(o / bo), math.ceil(i / bi)]),
            ]
        else:
            out.append((name, dtype, shape))
    return out


def lora_tensors(layers: int, hidden: int, kv_dim: int, rank: int) -> list[Tensor]:
    out: list[Tensor] = []
    for i in range(layers):
        p = f"base_model.model.model.layers.{i}.self_attn."
        out += [
            (p + "q_proj.lora_A.weight", "F32", [rank, hidden]),
            (p + "q_proj.lora_B.weight", "F32", [hidden, rank]),
            (p + "v_proj.lora_A.weight", "F32", [rank, hidden]),
            (p + "v_proj.lora_B.weight", "F32", [kv_dim, rank]),
        ]
    return out


# -- GGUF -----------------------------------------------------------------------------------------

GGUF_UINT32, GGUF_FLOAT32, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64 = 4, 6, 8, 9, 10
#: ggml types used below: id → (block elements, block bytes), from ggml's block layouts.
GGML = {"F32": (0, 1, 4), "Q4_K": (12, 256, 144), "Q6_K": (14, 256, 210)}


def _gstr(s: str, o: str = "<") -> bytes:
    b = s.encode()
    return struct.pack(o + "Q", len(b)) + b


def _gvalue(value: Any, o: str = "<") -> bytes:
    if isinstance(value, str):
        return struct.pack(o + "I", GGUF_STRING) + _gstr(value, o)
    if isinstance(value, float):
        return struct.pack(o + "If", GGUF_FLOAT32, value)
    if isinstance(value, int):
        return struct.pack(o + "II", GGUF_UINT32, value)
    if isinstance(value, list) and value and isinstance(value[0], str):
        head = struct.pack(o + "IIQ", GGUF_ARRAY, GGUF_STRING, len(value))
        return head + b"".join(_gstr(v, o) for v in value)
    if isinstance(value, list):
        head = struct.pack(o + "IIQ", GGUF_ARRAY, GGUF_UINT32, len(value))
        return head + b"".join(struct.pack(o + "I", v) for v in value)
    raise TypeError(value)


def gguf_tensor_bytes(dims: list[int], ggml: str) -> int:
    _, block, size = GGML[ggml]
    return dims[0] // block * size * math.prod(dims[1:])


def write_gguf(
    path: Path,
    metadata: dict[str, Any],
    tensors: list[tuple[str, list[int], str]],
    alignment: int = 32,
    *,
    order: str = "<",
    version: int = 3,
) -> int:
    """A GGUF file (``order`` ">" writes it big-endian); tensor data sparse. Returns the exact
    tensor bytes."""
    o = order
    body = b"GGUF" + struct.pack(o + "IQQ", version, len(tensors), len(metadata))
    for key, value in metadata.items():
        body += _gstr(key, o) + _gvalue(value, o)
    offset = total = 0
    for name, dims, ggml in tensors:
        body += (
            _gstr(name, o) + struct.pack(o + "I", len(dims)) + b"".join(struct.pack(o + "Q", d) for d in dims)
        )
        body += struct.pack(o + "IQ", GGML[ggml][0], offset)
        size = gguf_tensor_bytes(dims, ggml)
        total += size
        offset += size + (-size % alignment)
    body += b"\0" * (-len(body) % alignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(body)
        fh.truncate(len(body) + offset)
    return total


def llama_gguf_tensors(c: dict[str, Any]) -> list[tuple[str, list[int], str]]:
    """A Q4_K_M-style mix for a tied Llama: Q6_K embeddings, V and down; Q4_K elsewhere; F32 norms.

    GGUF lists dims innermost first (ne0 = the row length)."""
    h, nh, nkv, hd = _attn_dims(c)
    inter = c["intermediate_size"]
    out: list[tuple[str, list[int], str]] = [("token_embd.weight", [h, c["vocab_size"]], "Q6_K")]
    for i in range(c["num_hidden_layers"]):
        p = f"blk.{i}."
        out += [
            (p + "attn_q.weight", [h, nh * hd], "Q4_K"),
            (p + "attn_k.weight", [h, nkv * hd], "Q4_K"),
            (p + "attn_v.weight", [h, nkv * hd], "Q6_K"),
            (p + "attn_output.weight", [nh * hd, h], "Q4_K"),
            (p + "ffn_gate.weight", [h, inter], "Q4_K"),
            (p + "ffn_up.weight", [h, inter], "Q4_K"),
            (p + "ffn_down.weight", [inter, h], "Q6_K"),
            (p + "attn_norm.weight", [h], "F32"),
            (p + "ffn_norm.weight", [h], "F32"),
        ]
    out.append(("output_norm.weight", [h], "F32"))
    return out


# -- the Hugging Face cache layout ----------------------------------------------------------------

FileSpec = bytes | str | tuple[str, Any]  # content, or ("safetensors", tensors) / ("gguf", (meta, tensors))


class HfCache:
    """``<root>/models--org--name/{blobs,refs,snapshots/<rev>}`` as huggingface_hub writes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def repo(self, repo_id: str) -> Path:
        return self.root / ("models--" + repo_id.replace("/", "--"))

    def add(
        self,
        repo_id: str,
        rev: str,
        files: Mapping[str, FileSpec],
        *,
        refs: Iterable[str] = ("main",),
        blob_ids: Mapping[str, str] | None = None,
    ) -> Path:
        """Write a snapshot; each file is a blob the snapshot links to (relative symlink)."""
        repo = self.repo(repo_id)
        snap = repo / "snapshots" / rev
        (repo / "blobs").mkdir(parents=True, exist_ok=True)
        snap.mkdir(parents=True, exist_ok=True)
        for name, spec in files.items():
            blob_id = (blob_ids or {}).get(name) or hashlib.sha256(
                f"{repo_id}/{rev}/{name}".encode()
            ).hexdigest()
            blob = repo / "blobs" / blob_id
            if not blob.exists():
                write_file(blob, spec)
            link = snap / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        for ref in refs:
            (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
            (repo / "refs" / ref).write_text(rev)
        return snap


def write_file(path: Path, spec: FileSpec) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(spec, bytes):
        path.write_bytes(spec)
    elif isinstance(spec, str):
        path.write_text(spec)
    elif spec[0] == "safetensors":
        write_safetensors(path, spec[1])
    elif spec[0] == "gguf":
        write_gguf(path, *spec[1])
    else:
        raise ValueError(spec)


def jbytes(data: Any) -> bytes:
    return json.dumps(data, indent=2).encode()
