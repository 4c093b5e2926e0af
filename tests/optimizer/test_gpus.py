"""The NVML inventory: the real probe here (no GPU), and NVML's answers through an injected module."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from vllm_mcp.optimizer.gpus import host_device, probe_nvml


class NVMLError(Exception):
    pass


def fake_nvml(*, init_error: Exception | None = None, fail_cc_on: int | None = None) -> Any:
    """A stand-in for the pynvml module (a third-party C binding), shaped like its functions."""
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if init_error:
            raise init_error

    def cc(handle: int) -> tuple[int, int]:
        if handle == fail_cc_on:
            raise NVMLError("Not Supported")
        return (9, 0)

    return SimpleNamespace(
        calls=calls,
        NVML_NVLINK_MAX_LINKS=4,
        NVML_FEATURE_ENABLED=1,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(
            total=85_520_809_984, free=80_000_000_000 - h, used=0
        ),
        nvmlDeviceGetCudaComputeCapability=cc,
        nvmlDeviceGetNvLinkState=lambda h, link: 1 if link < 3 else 0,
        nvmlDeviceGetTopologyCommonAncestor=lambda a, b: 10,
        nvmlSystemGetDriverVersion=lambda: "580.65",
    )


def test_this_machine_has_no_gpu_and_says_why() -> None:
    probe = probe_nvml()
    assert probe.gpus == ()
    assert probe.reason is not None and "no NVIDIA GPU" in probe.reason


def test_nvml_devices_become_inventory_with_catalog_figures_and_nvlink() -> None:
    nvml = fake_nvml()
    probe = probe_nvml(nvml)
    assert probe.reason is None and probe.driver_version == "580.65"
    first = probe.gpus[0]
    assert (first.name, first.compute_capability, first.source) == ("NVIDIA H100 80GB HBM3", (9, 0), "nvml")
    assert first.memory_total_bytes == 85_520_809_984 and first.memory_free_bytes == 80_000_000_000
    assert first.bandwidth_gbs == 3350 and first.nvlink_links == 3
    assert [(t.a, t.b, t.level) for t in probe.topology] == [(0, 1, "NVLink×3")]
    assert nvml.calls == ["init", "shutdown"]


def test_init_failure_is_an_honest_no_gpu() -> None:
    probe = probe_nvml(fake_nvml(init_error=NVMLError("Driver Not Loaded")))
    assert probe.gpus == ()
    assert probe.reason == "no NVIDIA GPU: NVML did not start (Driver Not Loaded)"


def test_one_failing_query_leaves_only_that_field_unknown() -> None:
    nvml = fake_nvml(fail_cc_on=1)
    probe = probe_nvml(nvml)
    assert [g.compute_capability for g in probe.gpus] == [(9, 0), None]
    assert nvml.calls[-1] == "shutdown"


def test_host_device_is_the_cpu_backend_memory() -> None:
    host = host_device()
    assert host.platform == "cpu" and host.source == "host"
    assert 0 < (host.memory_free_bytes or 0) <= host.memory_total_bytes
