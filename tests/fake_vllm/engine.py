"""The fake engine's state: served model, sleep state, LoRA adapters, load; and its "model".

Semantics copied from real vLLM 0.32 (FACTS.md, and test_contract.py keeps them honest):
sleeping again answers 200; level 0 pauses without offloading; a level-2 sleep wakes in two
steps (``weights`` then ``kv_cache``) and stays "sleeping" until both are back; requests sent
while asleep are held, not rejected, and finish after the wake.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.fake_vllm.metrics import FakeMetrics

VERSION = "0.32.0"
WAKE_TAGS = frozenset({"weights", "kv_cache"})
_WORD = re.compile(r"\w+|[^\w\s]")


@dataclass
class Faults:
    """Fault injection switches (see docs/testing.md)."""

    start_delay: float = 0.0
    crash_at_start: bool = False
    exit_code: int = 1
    hang: bool = False
    ignore_sigterm: bool = False
    crash_mid_stream: bool = False
    fail_rate: float = 0.0
    token_delay: float = 0.0
    spawn_engine_core: bool = False


@dataclass
class FakeConfig:
    model: str
    served_name: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_model_len: int = 2048
    kv_cache_tokens: int = 65536
    default_max_tokens: int = 16
    enable_lora: bool = False
    max_loras: int = 1
    api_key: str | None = None
    faults: Faults = field(default_factory=Faults)


class FakeEngine:
    def __init__(self, cfg: FakeConfig) -> None:
        self.cfg = cfg
        self.sleep_level: int | None = None
        self._asleep_tags: set[str] = set()
        self._awake = asyncio.Event()
        self._awake.set()
        self.loras: dict[str, str] = {}
        self.running = 0
        self._tokens_in_flight = 0
        self.metrics = FakeMetrics(
            cfg.served_name,
            kv_cache_tokens=cfg.kv_cache_tokens,
            max_loras=cfg.max_loras if cfg.enable_lora else None,
        )

    # -- sleep mode ---------------------------------------------------------------------------

    def sleep(self, level: int) -> None:
        if self.sleep_level is None:
            self.sleep_level = level
            self._asleep_tags = set(WAKE_TAGS)
            self._awake.clear()
            self.metrics.set_sleep_level(level)

    def wake_up(self, tags: list[str] | None) -> None:
        self._asleep_tags -= set(tags) if tags else WAKE_TAGS
        if not self._asleep_tags and self.sleep_level is not None:
            self.sleep_level = None
            self._awake.set()
            self.metrics.set_sleep_level(None)

    @property
    def is_sleeping(self) -> bool:
        return self.sleep_level is not None

    async def wait_awake(self) -> None:
        await self._awake.wait()

    # -- models -------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        return [self.cfg.served_name, *self.loras]

    def add_lora(self, name: str, path: str) -> str | None:
        """None on success, else why not (as vLLM words it)."""
        if name in self.loras:
            return (
                f"The lora adapter '{name}' has already been loaded. If you want to load the "
                "adapter in place, set 'load_inplace' to True."
            )
        if not (Path(path) / "adapter_config.json").is_file():
            return f"Loading lora {name} failed: No adapter found for {path}"
        self.loras[name] = path
        return None

    # -- load accounting ----------------------------------------------------------------------

    def begin(self, tokens: int) -> None:
        self.running += 1
        self._tokens_in_flight += tokens
        self.metrics.set_load(self.running, self._tokens_in_flight)

    def end(self, tokens: int) -> None:
        self.running -= 1
        self._tokens_in_flight -= tokens
        self.metrics.set_load(self.running, self._tokens_in_flight)


def tokenize(text: str, vocab: int = 2048) -> list[int]:
    """A stable word-level tokenizer: one token per word or punctuation mark."""
    return [zlib.crc32(w.encode()) % vocab for w in _WORD.findall(text)]


def chat_prompt(messages: list[dict[str, object]]) -> str:
    """The ChatML rendering the test-bed tiny model's template produces."""
    parts = [f"<|im_start|>{m.get('role', 'user')}\n{m.get('content', '')}<|im_end|>\n" for m in messages]
    return "".join(parts) + "<|im_start|>assistant\n"


def generated_piece(i: int) -> str:
    """The i-th generated token's text: deterministic, never EOS (like the random tiny model)."""
    return f" w{i}"
