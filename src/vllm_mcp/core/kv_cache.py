"""KV-cache arithmetic as vLLM (v1 engine, 0.3x) sizes its pool. Pure: no I/O, no logging.

The contract, read in vLLM's ``kv_cache_interface`` / ``kv_cache_utils`` and checked against real
``vllm serve`` runs on the test bed (tests/optimizer/test_accuracy_vllm.py):

1. A *page* is one block of ``block_size`` tokens of one layer on one rank:
   ``block_size × kv_heads_on_rank × (head_dim_k + head_dim_v) × dtype bytes``. MLA layers keep one
   latent of ``kv_lora_rank + qk_rope_head_dim`` per token (no separate V, one "head").
2. KV heads are split over tensor-parallel ranks; when TP exceeds the KV heads each rank keeps
   one (replicated) head, so memory per rank stops shrinking.
3. Layers are grouped. One attention type → one group of all layers. Full + sliding-window
   layers (Gemma-2/3 style) → groups of ``group_size`` layers each (the smaller type's count, or
   the larger one when they are within 1.5×), padded to a whole number of groups; every group
   draws from one shared block pool, so ``bytes_per_block = group_size × page``.
4. ``num_blocks = pool_bytes // bytes_per_block``.
5. A request of ``max_model_len`` tokens needs, per group: full attention
   ``cdiv(max_model_len, block_size)`` blocks; sliding window
   ``cdiv(min(window - 1 + in_flight, max_model_len), block_size) + 1`` blocks.
6. vLLM logs ``KV cache size: int(num_blocks / blocks_per_request × max_model_len) tokens`` and
   ``Maximum concurrency …: num_blocks / blocks_per_request``.
"""

from __future__ import annotations

from dataclasses import dataclass

from vllm_mcp.errors import InvalidRequest

__all__ = [
    "KvCapacity",
    "KvLayout",
    "cdiv",
    "kv_capacity",
    "kv_heads_per_rank",
    "pool_bytes_for_tokens",
]


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def kv_heads_per_rank(num_kv_heads: int, tensor_parallel_size: int) -> int:
    """KV heads each TP rank stores: split when TP divides them, one replicated head past that."""
    return max(1, num_kv_heads // tensor_parallel_size)


@dataclass(frozen=True)
class KvLayout:
    """What one rank stores per token, per layer, and how its layers group (see rule 3)."""

    page_bytes_per_token: int  # one layer, one token, this rank (rule 1)
    full_layers: int  # full-attention layers on the busiest pipeline stage
    sliding_layers: int  # sliding-window layers on that stage
    sliding_window: int | None
    block_size: int

    @property
    def page_bytes(self) -> int:
        return self.block_size * self.page_bytes_per_token

    @property
    def bytes_per_token(self) -> int:
        """KV bytes one token costs on this rank across its layers (no grouping padding)."""
        return (self.full_layers + self.sliding_layers) * self.page_bytes_per_token

    def groups(self) -> tuple[int, int, int]:
        """``(group_size, full_groups, sliding_groups)`` as vLLM groups the layers (rule 3)."""
        counts = [n for n in (self.full_layers, self.sliding_layers) if n > 0]
        if not counts:
            return 0, 0, 0
        if len(counts) == 1:
            size = counts[0]
        else:
            low, high = min(counts), max(counts)
            size = high if high < low * 1.5 else low
        return size, cdiv(self.full_layers, size), cdiv(self.sliding_layers, size)

    @property
    def bytes_per_block(self) -> int:
        size, _, _ = self.groups()
        return size * self.page_bytes

    def blocks_per_request(self, max_model_len: int, in_flight_tokens: int) -> int:
        """Blocks one request of ``max_model_len`` tokens holds from the shared pool (rule 5)."""
        _, full_groups, sliding_groups = self.groups()
        full = cdiv(max_model_len, self.block_size)
        blocks = full_groups * full
        if sliding_groups:
            window = self.sliding_window or max_model_len
            held = min(window - 1 + in_flight_tokens, max_model_len)
            blocks += sliding_groups * (cdiv(held, self.block_size) + 1)
        return blocks


@dataclass(frozen=True)
class KvCapacity:
    """The pool as vLLM reports it at start-up."""

    pool_bytes: int
    num_blocks: int
    bytes_per_block: int
    blocks_per_request: int
    tokens: int  # "KV cache size: N tokens"
    max_concurrency: float  # "Maximum concurrency for <max_model_len> tokens per request: Xx"


def kv_capacity(layout: KvLayout, pool_bytes: int, max_model_len: int, in_flight_tokens: int) -> KvCapacity:
    """What vLLM will report for a KV pool of ``pool_bytes`` per rank (rules 4 and 6)."""
    if max_model_len < 1:
        raise InvalidRequest(f"max_model_len must be ≥ 1, got {max_model_len}", field="max_model_len")
    per_block = layout.bytes_per_block
    if per_block <= 0:  # attention-free model: vLLM keeps a single null block
        return KvCapacity(max(pool_bytes, 0), 1, 0, 1, 0, 0.0)
    num_blocks = max(pool_bytes, 0) // per_block
    per_request = layout.blocks_per_request(max_model_len, in_flight_tokens)
    concurrency = num_blocks / per_request
    return KvCapacity(
        pool_bytes=max(pool_bytes, 0),
        num_blocks=num_blocks,
        bytes_per_block=per_block,
        blocks_per_request=per_request,
        tokens=int(concurrency * max_model_len),
        max_concurrency=concurrency,
    )


def pool_bytes_for_tokens(layout: KvLayout, tokens: int, max_model_len: int, in_flight_tokens: int) -> int:
    """The smallest pool (bytes per rank) for which vLLM reports at least ``tokens`` of capacity.

    Used to size ``--kv-cache-memory-bytes`` when engines share a GPU: the answer is a whole
    number of blocks, so the reported capacity never falls short of the target.
    """
    per_block = layout.bytes_per_block
    if per_block <= 0 or tokens <= 0:
        return 0
    per_request = layout.blocks_per_request(max_model_len, in_flight_tokens)
    blocks = cdiv(tokens * per_request, max_model_len)
    while int(blocks / per_request * max_model_len) < tokens:  # float rounding guard
        blocks += 1
    return blocks * per_block
