"""Devices to plan for: a small catalog of common GPUs and planning inventories like ``2xH100-80GB``.

``Device`` is one memory domain an engine rank runs on: a real GPU seen through NVML, a GPU the
user declared for planning, or the host's RAM (vLLM's CPU backend). Pure: the NVML probe lives in
``vllm_mcp.optimizer.gpus``.

Catalog figures are the vendors' published ones: memory as NVML reports it for that board
(MiB), peak memory bandwidth (GB/s) and dense BF16 tensor TFLOP/s (0 where the chip has no BF16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from vllm_mcp.errors import InvalidRequest

__all__ = [
    "CATALOG",
    "Device",
    "GpuModel",
    "describe_inventory",
    "device_from_model",
    "lookup_gpu",
    "parse_inventory",
]

MiB = 1 << 20
GiB = 1 << 30

Platform = Literal["cuda", "rocm", "cpu"]
Source = Literal["nvml", "declared", "host"]


@dataclass(frozen=True)
class GpuModel:
    key: str  # canonical name, e.g. "H100-80GB"
    memory_mib: int
    bandwidth_gbs: float
    bf16_tflops: float
    compute_capability: tuple[int, int] | None
    platform: Platform = "cuda"
    aliases: tuple[str, ...] = ()

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MiB


CATALOG: tuple[GpuModel, ...] = (
    GpuModel("B200-192GB", 183_359, 8000, 2250, (10, 0), aliases=("B200",)),
    GpuModel("H200-141GB", 143_771, 4800, 989, (9, 0), aliases=("H200",)),
    GpuModel("H100-80GB", 81_559, 3350, 989, (9, 0), aliases=("H100", "H100-SXM", "H100-SXM-80GB")),
    GpuModel("H100-PCIE-80GB", 81_559, 2000, 756, (9, 0), aliases=("H100-PCIE",)),
    GpuModel("A100-80GB", 81_920, 2039, 312, (8, 0), aliases=("A100-SXM-80GB",)),
    GpuModel("A100-40GB", 40_960, 1555, 312, (8, 0), aliases=("A100",)),
    GpuModel("L40S-48GB", 46_068, 864, 362, (8, 9), aliases=("L40S",)),
    GpuModel("A6000-48GB", 49_140, 768, 155, (8, 6), aliases=("A6000", "RTXA6000")),
    GpuModel("A10-24GB", 23_028, 600, 125, (8, 6), aliases=("A10", "A10G")),
    GpuModel("L4-24GB", 23_034, 300, 121, (8, 9), aliases=("L4",)),
    GpuModel("RTX5090-32GB", 32_607, 1792, 210, (12, 0), aliases=("RTX5090", "5090")),
    GpuModel("RTX4090-24GB", 24_564, 1008, 165, (8, 9), aliases=("RTX4090", "4090")),
    GpuModel("RTX3090-24GB", 24_576, 936, 71, (8, 6), aliases=("RTX3090", "3090")),
    GpuModel("V100-32GB", 32_768, 900, 0, (7, 0), aliases=("V100",)),
    GpuModel("T4-16GB", 15_360, 320, 0, (7, 5), aliases=("T4",)),
    GpuModel("MI300X-192GB", 196_592, 5300, 1307, None, platform="rocm", aliases=("MI300X",)),
)


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().upper()).replace("NVIDIA-", "").replace("GEFORCE-", "")


def _squash(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def lookup_gpu(name: str) -> GpuModel | None:
    """A catalog entry by canonical name or alias (case and punctuation ignored), or by an NVML
    board name such as ``NVIDIA H100 80GB HBM3``."""
    want = _squash(_norm(name))
    for gpu in CATALOG:
        if want in {_squash(gpu.key), *(_squash(a) for a in gpu.aliases)}:
            return gpu
    # NVML board names ("NVIDIA H100 80GB HBM3"): prefer an entry whose every part appears
    # (H100 + 80GB), else one whose chip name appears; the longest key wins ties (L40S over L4).
    board = _squash(name)
    strong: list[GpuModel] = []
    weak: list[GpuModel] = []
    for gpu in CATALOG:
        parts = [_squash(p) for p in gpu.key.split("-")]
        if all(p in board for p in parts):
            strong.append(gpu)
        elif parts[0] in board:
            weak.append(gpu)
    pool = strong or weak
    return max(pool, key=lambda g: len(g.key)) if pool else None


@dataclass(frozen=True)
class Device:
    """One device an engine rank can use. ``memory_free_bytes`` is None for declared devices."""

    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int | None = None
    platform: Platform = "cuda"
    source: Source = "declared"
    compute_capability: tuple[int, int] | None = None
    bandwidth_gbs: float | None = None
    bf16_tflops: float | None = None
    nvlink_links: int | None = None  # active NVLink links (NVML), None when unknown

    @property
    def bf16_supported(self) -> bool:
        if self.platform != "cuda":
            return True
        return self.compute_capability is None or self.compute_capability >= (8, 0)

    @property
    def fp8_supported(self) -> bool:
        """FP8 weights (W8A8 on Ada/Hopper+, weight-only Marlin on Ampere) and FP8 KV cache."""
        if self.platform == "cpu":
            return False
        return self.compute_capability is None or self.compute_capability >= (8, 0)

    @property
    def available_bytes(self) -> int:
        """What a new engine may plan on: free memory when known, else the total."""
        free = self.memory_free_bytes
        return self.memory_total_bytes if free is None else min(free, self.memory_total_bytes)

    def with_index(self, index: int) -> Device:
        return replace(self, index=index)


def device_from_model(gpu: GpuModel, index: int) -> Device:
    return Device(
        index=index,
        name=gpu.key,
        memory_total_bytes=gpu.memory_bytes,
        platform=gpu.platform,
        source="declared",
        compute_capability=gpu.compute_capability,
        bandwidth_gbs=gpu.bandwidth_gbs,
        bf16_tflops=gpu.bf16_tflops,
    )


_ITEM = re.compile(r"^(?:(\d{1,3})\s*[xX×*]\s*)?(.+)$")


def parse_inventory(text: str) -> tuple[Device, ...]:
    """``"2xH100-80GB"``, ``"1xRTX4090"``, ``"2xH100, 1xL4"`` → declared devices, indexed from 0.

    Raises ``InvalidRequest`` naming the unknown GPU and listing the catalog.
    """
    devices: list[Device] = []
    for raw in filter(None, (p.strip() for p in re.split(r"[,+;]", text))):
        match = _ITEM.match(raw)
        count = int(match.group(1) or 1) if match else 0
        name = match.group(2).strip() if match else raw
        gpu = lookup_gpu(name)
        if gpu is None:
            known = ", ".join(g.key for g in CATALOG)
            raise InvalidRequest(
                f"unknown GPU {name!r} in inventory {text!r}",
                hint=f"write COUNTxNAME with a catalog name: {known}",
                field="gpus",
            )
        if not 1 <= count <= 512:
            raise InvalidRequest(f"GPU count in {raw!r} must be 1–512", field="gpus")
        base = len(devices)
        devices.extend(device_from_model(gpu, base + i) for i in range(count))
    if not devices:
        raise InvalidRequest(
            f"empty GPU inventory {text!r}", hint="write e.g. 2xH100-80GB or 1xRTX4090", field="gpus"
        )
    return tuple(devices)


def describe_inventory(devices: tuple[Device, ...]) -> str:
    """``2xH100-80GB + 1xL4-24GB`` (run-length by name, order kept)."""
    parts: list[tuple[str, int]] = []
    for d in devices:
        if parts and parts[-1][0] == d.name:
            parts[-1] = (d.name, parts[-1][1] + 1)
        else:
            parts.append((d.name, 1))
    return " + ".join(f"{n}x{name}" for name, n in parts) or "(none)"
