"""VllmClient end to end: every method against real vLLM 0.32 (marked ``vllm``) and the fake.

Each test leaves the shared engine as it found it: awake, no adapters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_vllm.launch import contract_server, running_fake_vllm
from tests.testbed import RunningVllm, free_port, tiny_lora, tiny_model
from vllm_mcp.engine import ModelCard, VllmClient
from vllm_mcp.errors import UpstreamHTTPError, UpstreamUnavailable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

ADAPTER = "client-lora"


@pytest.fixture(scope="module", params=[pytest.param("real", marks=pytest.mark.vllm), "fake"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningVllm]:
    with contract_server(request.param, request, tmp_path_factory.mktemp("client")) as srv:
        yield srv


async def test_identity_calls(server: RunningVllm) -> None:
    async with VllmClient(server.base_url) as vllm:
        assert await vllm.health() is True
        assert await vllm.models() == [
            ModelCard(id="tiny", root=str(tiny_model()), parent=None, max_model_len=2048)
        ]
        assert await vllm.version() == "0.32.0"
        assert await vllm.load() == 0
        metrics = await vllm.metrics_text()
        assert 'vllm:num_requests_running{engine="0",model_name="tiny"}' in metrics
        assert "vllm_config" in await vllm.server_info()


async def test_sleep_level_1_and_wake(server: RunningVllm) -> None:
    async with VllmClient(server.base_url) as vllm:
        try:
            await vllm.sleep(1)
            assert await vllm.is_sleeping() is True
        finally:
            await vllm.wake_up()
        assert await vllm.is_sleeping() is False
        done = await vllm.completion("tiny", "hello", max_tokens=2)
    assert done["choices"][0]["finish_reason"] in ("length", "stop")


async def test_sleep_level_2_and_the_staged_wake(server: RunningVllm) -> None:
    async with VllmClient(server.base_url) as vllm:
        try:
            await vllm.sleep(2)
            await vllm.wake_up(["weights"])
            assert await vllm.is_sleeping() is True
            assert await vllm.collective_rpc("reload_weights") == [None]
            await vllm.wake_up(["kv_cache"])
            assert await vllm.is_sleeping() is False
            await vllm.reset_prefix_cache()
        finally:
            await vllm.wake_up()
        assert (await vllm.completion("tiny", "hello", max_tokens=2))["usage"]["completion_tokens"] >= 1


async def test_lora_load_twice_and_unload_unknown(server: RunningVllm) -> None:
    async with VllmClient(server.base_url) as vllm:
        try:
            text = await vllm.load_lora(ADAPTER, str(tiny_lora()))
            assert text == f"Success: LoRA adapter '{ADAPTER}' added successfully."
            cards = {c.id: c for c in await vllm.models()}
            assert (cards[ADAPTER].parent, cards[ADAPTER].root) == ("tiny", str(tiny_lora()))
            with pytest.raises(UpstreamHTTPError) as twice:
                await vllm.load_lora(ADAPTER, str(tiny_lora()))
            assert twice.value.status == 400
            assert "unload it first" in twice.value.hint
        finally:
            assert (await vllm.unload_lora(ADAPTER)).startswith("Success:")
        with pytest.raises(UpstreamHTTPError) as unknown:
            await vllm.unload_lora(ADAPTER)
        assert unknown.value.status == 404
        assert [c.id for c in await vllm.models()] == ["tiny"]


async def test_tokenize_and_unknown_model(server: RunningVllm) -> None:
    async with VllmClient(server.base_url) as vllm:
        tokens = await vllm.tokenize("tiny", "hello world")
        assert tokens
        assert all(isinstance(t, int) for t in tokens)
        with pytest.raises(UpstreamHTTPError) as info:
            await vllm.completion("no-such-model", "hi")
    assert info.value.status == 404
    assert "does not exist" in info.value.context["vllm_message"]


async def test_a_closed_port_is_unavailable_and_unhealthy() -> None:
    async with VllmClient(f"http://127.0.0.1:{free_port()}", timeout=2) as vllm:
        assert await vllm.health() is False
        with pytest.raises(UpstreamUnavailable, match="connection failed"):
            await vllm.models()


async def test_lora_on_an_engine_without_lora_says_enable_lora(tmp_path: Path) -> None:
    # Real vLLM answers this 500 exactly so (FACTS.md); the fake copies its body.
    with running_fake_vllm(tmp_path) as fake:
        async with VllmClient(fake.base_url) as vllm:
            with pytest.raises(UpstreamHTTPError) as info:
                await vllm.load_lora("a", str(tiny_lora()))
    assert info.value.status == 500
    assert "--enable-lora" in info.value.hint
