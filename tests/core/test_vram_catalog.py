"""The GPU catalog and declared planning inventories."""

from __future__ import annotations

import pytest

from vllm_mcp.core.gpu_catalog import describe_inventory, lookup_gpu, parse_inventory
from vllm_mcp.core.model_catalog import reference_model
from vllm_mcp.errors import InvalidRequest


def test_inventory_strings_become_indexed_declared_devices() -> None:
    devices = parse_inventory("2xH100-80GB, 1xrtx4090")
    assert [(d.index, d.name, d.source) for d in devices] == [
        (0, "H100-80GB", "declared"),
        (1, "H100-80GB", "declared"),
        (2, "RTX4090-24GB", "declared"),
    ]
    assert devices[0].memory_free_bytes is None
    assert devices[0].memory_total_bytes == 81_559 * 2**20
    assert describe_inventory(devices) == "2xH100-80GB + 1xRTX4090-24GB"


def test_a_bare_name_means_one_gpu() -> None:
    assert [d.name for d in parse_inventory("L4")] == ["L4-24GB"]


@pytest.mark.parametrize(
    ("board", "key"),
    [
        ("NVIDIA H100 80GB HBM3", "H100-80GB"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA A100-PCIE-40GB", "A100-40GB"),
        ("NVIDIA GeForce RTX 4090", "RTX4090-24GB"),
        ("NVIDIA L40S", "L40S-48GB"),
        ("NVIDIA L4", "L4-24GB"),
    ],
)
def test_nvml_board_names_find_their_catalog_entry(board: str, key: str) -> None:
    gpu = lookup_gpu(board)
    assert gpu is not None and gpu.key == key


def test_unknown_gpu_names_the_catalog() -> None:
    with pytest.raises(InvalidRequest, match="unknown GPU 'Z80'") as info:
        parse_inventory("2xZ80")
    assert "H100-80GB" in info.value.hint
    with pytest.raises(InvalidRequest, match="empty"):
        parse_inventory(" , ")
    with pytest.raises(InvalidRequest, match="1–512"):
        parse_inventory("0xH100")


def test_reference_models_by_id_or_short_name() -> None:
    assert reference_model("meta-llama/Llama-3.1-8B") is reference_model("LLAMA-3.1-8B")
    assert reference_model("no-such-model") is None
