"""Parsing what vLLM reports at start: real CPU logs from the test bed, GPU lines in vLLM's format."""

from __future__ import annotations

from pathlib import Path

from vllm_mcp.optimizer.start_report import cache_config_labels, parse_start_report

DATA = Path(__file__).parent / "data"
GIB = 1 << 30

# Lines written in the formats of vLLM 0.32's GPU worker and model runner (no GPU here to capture
# a real one): TP=2, so every worker logs its own loading and KV-memory lines.
GPU_LOG = (DATA / "vllm-gpu-tp2-synthetic.log").read_text()


def test_real_cpu_start_log_gives_the_kv_line_and_version() -> None:
    text = (DATA / "vllm-cpu-fp32-len2000.log").read_text()
    labels = cache_config_labels((DATA / "cache_config_info-fp32-len2000.prom").read_text())
    report = parse_start_report(text, labels)
    assert report.vllm_version == "0.32.0"
    assert report.device_kind == "CPU"
    assert (report.kv_cache_tokens, report.max_model_len, report.max_concurrency) == (64_000, 2000, 32.0)
    assert report.available_kv_bytes == int(0.06 * GIB)  # "Explicitly set (0.06/7.96) GiB"
    assert (report.num_blocks, report.block_size, report.kv_cache_memory_bytes) == (512, 128, 67_108_864)
    assert report.model_loading_bytes is None  # the CPU backend does not log it
    assert report.init_engine_s is not None


def test_gpu_lines_keep_the_busiest_rank() -> None:
    report = parse_start_report(GPU_LOG)
    assert report.device_kind == "GPU"
    assert report.kv_cache_tokens == 1_017_408
    assert report.max_concurrency == 124.19
    assert report.model_loading_bytes == int(7.52 * GIB)
    assert report.model_loading_s == 3.4
    assert report.available_kv_bytes == int(62.10 * GIB)
    assert report.graph_bytes == int(0.45 * GIB)
    assert report.graph_estimate_bytes == int(0.41 * GIB)
    assert report.init_engine_s == 15.61


def test_labels_fill_in_when_the_log_lacks_the_kv_line() -> None:
    report = parse_start_report(
        "nothing useful",
        {
            "kv_cache_size_tokens": "131072",
            "kv_cache_max_concurrency": "64.0",
            "num_gpu_blocks": "1024",
            "cache_dtype": "auto",
            "gpu_memory_utilization": "None",
        },
    )
    assert report.kv_cache_tokens == 131_072 and report.max_concurrency == 64.0
    assert report.num_blocks == 1024 and report.gpu_memory_utilization is None
    assert report.has_kv


def test_an_unrelated_log_reports_nothing() -> None:
    report = parse_start_report("Traceback (most recent call last):\nValueError: boom\n")
    assert not report.has_kv
    assert report.to_dict() == {}
    assert cache_config_labels("# no vllm here\n") == {}
