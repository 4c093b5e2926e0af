"""Benchmarks for vllm-mcp: ``python -m bench`` (or ``make bench``). See bench/README.md."""
