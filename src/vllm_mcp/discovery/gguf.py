"""GGUF headers: metadata key/values and tensor infos, read without touching tensor data.

Layout (GGUF v2/v3; v1 used 32-bit counts and is refused): magic ``GGUF``, u32 version, u64
tensor count, u64 metadata count, then metadata as (string key, u32 type, value), then per
tensor (string name, u32 n_dims, u64 dims[n_dims], u32 ggml type, u64 offset). Strings are a u64
length plus UTF-8 bytes. Files written on big-endian hosts store the same fields big-endian; the
version field tells which. Exact bytes per tensor come from the ggml type's block size and block
bytes (``GGML_TYPES``); the scanner maps the metadata onto a ``config.json``-shaped dict so one
function (``model_meta_from_config``) builds the metadata for both formats.
"""

from __future__ import annotations

import math
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vllm_mcp.core.model_meta import WeightsInfo
from vllm_mcp.engine.model_files import FormatError

MAGIC = b"GGUF"
MAX_STRING = 64 * 1024 * 1024
MAX_COUNT = 1 << 32
SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<total>\d{5})\.gguf$")

#: ggml tensor type id → (name, elements per block, bytes per block), as llama.cpp's ggml defines.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}

#: ``general.file_type`` (llama.cpp's LLAMA_FTYPE) → the name quantized files are known by.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}  # fmt: skip

#: GGUF ``general.architecture`` → the Hugging Face architecture vLLM's registry knows it by.
ARCHITECTURES: dict[str, str] = {
    "llama": "LlamaForCausalLM",
    "mistral3": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen2moe": "Qwen2MoeForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3moe": "Qwen3MoeForCausalLM",
    "gemma": "GemmaForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
    "gemma3": "Gemma3ForCausalLM",
    "phi3": "Phi3ForCausalLM",
    "deepseek2": "DeepseekV2ForCausalLM",
    "falcon": "FalconForCausalLM",
    "starcoder2": "Starcoder2ForCausalLM",
    "command-r": "CohereForCausalLM",
    "gpt2": "GPT2LMHeadModel",
    "granite": "GraniteForCausalLM",
    "stablelm": "StableLmForCausalLM",
    "olmo2": "Olmo2ForCausalLM",
    "gpt-oss": "GptOssForCausalLM",
}

# Value types: id → struct format of a scalar (8 = string, 9 = array).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GgufHeader:
    version: int
    metadata: dict[str, Any]
    tensors: list[tuple[str, tuple[int, ...], int]]  # (name, dims, ggml type)
    array_lengths: dict[str, int] = field(default_factory=dict)  # arrays are counted, not kept


class _Reader:
    """Buffered little/big-endian field reader over a file object."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh, self.name, self.order = fh, name, "<"
        self.buf, self.pos = b"", 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.buf):
            rest = self.buf[self.pos :]
            more = self.fh.read(max(n - len(rest), 1 << 20))
            self.buf, self.pos = rest + more, 0
            if n > len(self.buf):
                raise FormatError(f"{self.name}: truncated inside its GGUF header")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def num(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(self.order + fmt, self.take(size))[0]

    def string(self) -> str:
        n = self.num("Q")
        if n > MAX_STRING:
            raise FormatError(f"{self.name}: string of {n} bytes in the GGUF header is not plausible")
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.num(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        raise FormatError(f"{self.name}: unknown GGUF value type {vtype}")

    def skip_array(self, itype: int, count: int) -> None:
        if itype in _SCALARS:
            self.take(struct.calcsize(_SCALARS[itype]) * count)
        elif itype == _STRING:
            for _ in range(count):
                self.take(self.num("Q"))
        else:
            raise FormatError(f"{self.name}: GGUF array of type {itype} is not supported")


def read_header(path: Path) -> GgufHeader:
    """Metadata and tensor infos of a GGUF file. Arrays are skipped, their lengths recorded."""
    try:
        with path.open("rb") as fh:
            return _parse(_Reader(fh, path.name))
    except OSError as exc:
        raise FormatError(f"{path.name}: cannot read ({exc.strerror or exc})") from exc


def _parse(r: _Reader) -> GgufHeader:
    if r.take(4) != MAGIC:
        raise FormatError(f"{r.name}: not a GGUF file (bad magic)")
    version = r.num("I")
    if version & 0xFFFF == 0:  # written big-endian: the version reads byte-swapped
        r.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]
    if version not in (2, 3):
        raise FormatError(f"{r.name}: GGUF version {version} is not supported (2 and 3 are)")
    n_tensors, n_kv = r.num("Q"), r.num("Q")
    if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise FormatError(f"{r.name}: GGUF counts are not plausible")
    meta: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    for _ in range(n_kv):
        key, vtype = r.string(), r.num("I")
        if vtype == _ARRAY:
            itype, count = r.num("I"), r.num("Q")
            if itype in _SCALARS and count <= 64:
                meta[key] = [r.value(itype) for _ in range(count)]
            else:
                r.skip_array(itype, count)
            lengths[key] = count
        else:
            meta[key] = r.value(vtype)
    tensors = []
    for _ in range(n_tensors):
        name, n_dims = r.string(), r.num("I")
        if n_dims > 8:
            raise FormatError(f"{r.name}: tensor {name!r} has {n_dims} dimensions")
        dims = tuple(r.num("Q") for _ in range(n_dims))
        ttype = r.num("I")
        r.num("Q")  # offset into the data section; sizes come from the type table
        tensors.append((name, dims, ttype))
    return GgufHeader(version, meta, tensors, lengths)


def tensor_bytes(name: str, dims: tuple[int, ...], ttype: int, file: str) -> int:
    """Exact bytes of one tensor: rows of ``dims[0]`` elements stored in whole blocks."""
    if ttype not in GGML_TYPES:
        raise FormatError(f"{file}: tensor {name!r} has unknown ggml type {ttype}")
    _, block, block_bytes = GGML_TYPES[ttype]
    row = dims[0] if dims else 1
    if row % block:
        raise FormatError(f"{file}: tensor {name!r} row of {row} is not a multiple of {block}")
    return row // block * block_bytes * math.prod(dims[1:])


def weights_info(headers: list[tuple[Path, GgufHeader]]) -> WeightsInfo:
    """Exact totals over the shards of one GGUF model."""
    params = nbytes = tensors = 0
    by_type: Counter[str] = Counter()
    for path, header in headers:
        for name, dims, ttype in header.tensors:
            count = math.prod(dims)
            nbytes += tensor_bytes(name, dims, ttype, path.name)
            params += count
            tensors += 1
            by_type[GGML_TYPES[ttype][0].lower()] += count
    ranked = tuple(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0])))
    return WeightsInfo("gguf", params, nbytes, tensors, len(headers), ranked)


def file_type_name(header: GgufHeader, weights: WeightsInfo) -> str | None:
    """``Q4_K_M`` & co. from ``general.file_type``, else the most used tensor type."""
    ftype = header.metadata.get("general.file_type")
    if isinstance(ftype, int) and ftype in FILE_TYPES:
        return FILE_TYPES[ftype]
    return weights.main_dtype.upper() if weights.main_dtype else None


def config_from_gguf(header: GgufHeader) -> dict[str, Any]:
    """A ``config.json``-shaped dict from GGUF metadata (for ``model_meta_from_config``)."""
    m = header.metadata
    arch = str(m.get("general.architecture") or "")

    def k(key: str) -> Any:
        value = m.get(f"{arch}.{key}")
        return max(value) if isinstance(value, list) and value else value

    cfg: dict[str, Any] = {
        "model_type": arch or None,
        "num_hidden_layers": k("block_count"),
        "max_position_embeddings": k("context_length"),
        "hidden_size": k("embedding_length"),
        "intermediate_size": k("feed_forward_length"),
        "num_attention_heads": k("attention.head_count"),
        "num_key_value_heads": k("attention.head_count_kv"),
        "head_dim": k("attention.key_length"),
        "sliding_window": k("attention.sliding_window"),
        "num_local_experts": k("expert_count"),
        "num_experts_per_tok": k("expert_used_count"),
        "vocab_size": k("vocab_size") or header.array_lengths.get("tokenizer.ggml.tokens"),
    }
    hf_arch = ARCHITECTURES.get(arch)
    if arch == "llama" and (k("expert_count") or 0) > 1:
        hf_arch = "MixtralForCausalLM"
    if hf_arch:
        cfg["architectures"] = [hf_arch]
    if k("attention.kv_lora_rank"):
        cfg.update(
            kv_lora_rank=k("attention.kv_lora_rank"),
            q_lora_rank=k("attention.q_lora_rank"),
            qk_rope_head_dim=k("rope.dimension_count"),
            qk_nope_head_dim=(k("attention.key_length") or 0) - (k("rope.dimension_count") or 0) or None,
            v_head_dim=k("attention.value_length"),
        )
    scaling = k("rope.scaling.type")
    if scaling and scaling != "none":
        cfg["rope_scaling"] = {
            "type": scaling,
            "factor": k("rope.scaling.factor"),
            "original_max_position_embeddings": k("rope.scaling.original_context_length"),
        }
    return {key: value for key, value in cfg.items() if value is not None}


def split_part(name: str) -> tuple[str, int, int] | None:
    """``model-00001-of-00003.gguf`` → (``model``, 1, 3); None for a single-file model."""
    m = SPLIT_RE.match(name)
    return (m["stem"], int(m["part"]), int(m["total"])) if m else None
