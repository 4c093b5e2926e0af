"""A fake vLLM 0.32 server for tests: same endpoints, bodies, metric names and log lines as the
real one for the subset the project uses, plus fault injection. See docs/testing.md.

Start it from tests with ``tests.fake_vllm.launch`` (``running_fake_vllm``, ``spawn_fake_vllm``),
or point ``engine.vllm_bin`` at ``tests/fake_vllm/vllm`` (a ``vllm serve`` look-alike).
This package stays import-light: the fake itself imports only Starlette, uvicorn and
prometheus_client, never pytest.
"""
