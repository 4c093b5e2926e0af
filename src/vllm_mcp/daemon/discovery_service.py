"""How the daemon builds its ``Discovery``: the device source joins the optimizer's NVML probe
(a sibling layer of discovery, so it is wired here, in the composition root) with host memory
for vLLM's CPU backend."""

from __future__ import annotations

from collections.abc import Sequence

from vllm_mcp.config import Settings
from vllm_mcp.core.gpu_catalog import Device
from vllm_mcp.discovery.service import Discovery
from vllm_mcp.discovery.store import SqlDb


def local_devices(settings: Settings) -> tuple[Sequence[Device], str | None]:
    """NVIDIA GPUs (NVML); host memory when the platform is cpu, or auto without a GPU."""
    from vllm_mcp.optimizer.gpus import host_device, probe_nvml

    platform = settings.engine.platform
    if platform == "cpu":
        return (host_device(),), None
    probe = probe_nvml()
    if probe.gpus:
        return probe.gpus, None
    if platform == "auto":
        return (host_device(),), f"{probe.reason}; assessed against host memory (vLLM's CPU backend)"
    return (), f"{probe.reason}; pass gpus (e.g. 1xH100-80GB) or gpu_memory_gib to check against GPUs"


def build_discovery(settings: Settings, db: SqlDb) -> Discovery:
    return Discovery(settings, db, devices=lambda: local_devices(settings))
