"""The GPU inventory: what NVML sees (name, memory, compute capability, NVLink, topology), or an
honest "no GPU" with the reason, plus the host's RAM for vLLM's CPU backend.

``pynvml`` (package nvidia-ml-py) is imported lazily and injected in tests (``nvml=``), so the
error paths are exercised on machines without a GPU. Every NVML call that fails for one device
leaves that field ``None`` instead of failing the whole probe; ``nvmlShutdown`` always runs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import psutil

from vllm_mcp.core.gpu_catalog import Device, lookup_gpu

__all__ = ["GpuProbe", "TopologyLink", "host_device", "probe_nvml"]

#: NVML's nvmlGpuTopologyLevel_t, as a reader would name it.
_TOPOLOGY = {
    0: "same board",
    10: "one PCIe switch",
    20: "several PCIe switches",
    30: "PCIe host bridge",
    40: "same NUMA node",
    50: "across NUMA nodes",
}


@dataclass(frozen=True)
class TopologyLink:
    a: int
    b: int
    level: str  # "NVLink×N" when NVLink joins them, else NVML's common-ancestor level


@dataclass(frozen=True)
class GpuProbe:
    gpus: tuple[Device, ...]
    reason: str | None = None  # why there is no GPU (None when some were found)
    driver_version: str | None = None
    topology: tuple[TopologyLink, ...] = ()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _call(fn: Any, *args: Any) -> Any:
    """One NVML call; ``None`` when it fails (unsupported on this board, lost GPU, …)."""
    try:
        return fn(*args)
    except Exception:  # NVMLError has dozens of subclasses; any of them means "unknown"
        return None


def _nvlinks(nvml: Any, handle: Any) -> int | None:
    max_links = getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)
    enabled = getattr(nvml, "NVML_FEATURE_ENABLED", 1)
    states = [_call(nvml.nvmlDeviceGetNvLinkState, handle, link) for link in range(max_links)]
    if all(s is None for s in states):
        return None
    return sum(1 for s in states if s == enabled)


def _device(nvml: Any, index: int, handle: Any) -> Device:
    name = _text(_call(nvml.nvmlDeviceGetName, handle) or f"GPU {index}")
    mem = _call(nvml.nvmlDeviceGetMemoryInfo, handle)
    cc = _call(nvml.nvmlDeviceGetCudaComputeCapability, handle)
    catalog = lookup_gpu(name)
    return Device(
        index=index,
        name=name,
        memory_total_bytes=int(mem.total) if mem is not None else 0,
        memory_free_bytes=int(mem.free) if mem is not None else None,
        platform="cuda",
        source="nvml",
        compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
        bandwidth_gbs=catalog.bandwidth_gbs if catalog else None,
        bf16_tflops=catalog.bf16_tflops if catalog else None,
        nvlink_links=_nvlinks(nvml, handle),
    )


def _topology(nvml: Any, handles: list[Any], gpus: list[Device]) -> tuple[TopologyLink, ...]:
    links: list[TopologyLink] = []
    for i in range(len(handles)):
        for j in range(i + 1, len(handles)):
            na, nb = gpus[i].nvlink_links or 0, gpus[j].nvlink_links or 0
            if na and nb:
                links.append(TopologyLink(i, j, f"NVLink×{min(na, nb)}"))
                continue
            level = _call(nvml.nvmlDeviceGetTopologyCommonAncestor, handles[i], handles[j])
            if level is not None:
                links.append(TopologyLink(i, j, _TOPOLOGY.get(int(level), f"level {level}")))
    return tuple(links)


def probe_nvml(nvml: Any | None = None) -> GpuProbe:
    """Every GPU NVML sees; never raises: no NVML, no driver or no GPU is a ``reason``."""
    if nvml is None:
        try:
            import pynvml as nvml_module
        except ImportError:
            return GpuProbe((), reason="nvidia-ml-py (pynvml) is not installed")
        nvml = nvml_module
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, …
        return GpuProbe((), reason=f"no NVIDIA GPU: NVML did not start ({_text(exc) or type(exc).__name__})")
    try:
        count = _call(nvml.nvmlDeviceGetCount) or 0
        handles = [_call(nvml.nvmlDeviceGetHandleByIndex, i) for i in range(int(count))]
        gpus = [_device(nvml, i, h) for i, h in enumerate(handles) if h is not None]
        driver = _call(nvml.nvmlSystemGetDriverVersion)
        topology = _topology(nvml, [h for h in handles if h is not None], gpus)
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    reason = None if gpus else "no NVIDIA GPU: NVML started but reports 0 devices"
    return GpuProbe(tuple(gpus), reason, _text(driver) if driver else None, topology)


def host_device(index: int = 0) -> Device:
    """The host's RAM as the device vLLM's CPU backend runs on (free = available now)."""
    vm = psutil.virtual_memory()
    return Device(
        index=index,
        name="host CPU",
        memory_total_bytes=int(vm.total),
        memory_free_bytes=int(vm.available),
        platform="cpu",
        source="host",
    )
