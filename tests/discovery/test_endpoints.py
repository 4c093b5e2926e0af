"""Endpoint discovery: vLLM identified by its signatures, other servers labelled "not-vllm",
closed ports skipped unless named; and against the real test-bed vLLM."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.discovery.servers import plain_app, serving
from tests.testbed import RunningVllm, free_port
from vllm_mcp.config import Settings
from vllm_mcp.discovery.endpoints import ProbeTarget, discover, targets_from_settings
from vllm_mcp.errors import InvalidRequest

VLLM_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "coder",
            "object": "model",
            "owned_by": "vllm",
            "root": "/m/coder",
            "parent": None,
            "max_model_len": 32768,
        },
        {
            "id": "sql",
            "object": "model",
            "owned_by": "vllm",
            "root": "/l/sql",
            "parent": "coder",
            "max_model_len": None,
        },
    ],
}
METRICS = (
    "# HELP vllm:engine_sleep_state Engine sleep state\n"
    'vllm:engine_sleep_state{engine="0",model_name="coder",sleep_state="awake"} 0.0\n'
    'vllm:engine_sleep_state{engine="0",model_name="coder",sleep_state="weights_offloaded"} 1.0\n'
)


def _handler(request: httpx.Request) -> httpx.Response:
    port, path = request.url.port, request.url.path
    if port == 8000:  # vLLM, dev mode off (no /is_sleeping): sleep state from the gauge
        answers = {"/version": (200, {"version": "0.32.0"}), "/v1/models": (200, VLLM_MODELS)}
        if path == "/metrics":
            return httpx.Response(200, text=METRICS)
        status, body = answers.get(path, (404, {"detail": "Not Found"}))
        return httpx.Response(status, json=body)
    if port == 8001:  # some other web server
        return httpx.Response(404, text="<html>not found</html>") if path != "/" else httpx.Response(200)
    if port == 8002:  # an OpenAI-compatible server that is not vLLM
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "llama3", "object": "model"}]})
        return httpx.Response(404, json={"error": "not found"})
    raise httpx.ConnectError("connection refused", request=request)


def _targets(*ports: int, explicit: bool = False) -> list[ProbeTarget]:
    return [ProbeTarget(f"http://127.0.0.1:{p}", "test", explicit) for p in ports]


@pytest.mark.anyio
async def test_vllm_other_servers_and_closed_ports() -> None:
    scan = await discover(
        _targets(8000, 8001, 8002, 8003),
        timeout=1,
        concurrency=4,
        transport_factory=lambda: httpx.MockTransport(_handler),
    )
    by_url = {r.url: r for r in scan.endpoints}
    assert scan.probed == 4 and set(by_url) == {f"http://127.0.0.1:{p}" for p in (8000, 8001, 8002)}
    vllm = by_url["http://127.0.0.1:8000"]
    assert (vllm.status, vllm.version, vllm.max_model_len, vllm.sleeping) == ("vllm", "0.32.0", 32768, True)
    assert [m.id for m in vllm.models] == ["coder"] and [m.id for m in vllm.loras] == ["sql"]
    assert vllm.loras[0].parent == "coder" and "vllm: metrics" in vllm.evidence
    assert by_url["http://127.0.0.1:8001"].status == "not-vllm"
    assert by_url["http://127.0.0.1:8002"].status == "not-vllm"


@pytest.mark.anyio
async def test_a_named_endpoint_that_does_not_answer_is_reported_unreachable() -> None:
    scan = await discover(
        _targets(8003, explicit=True),
        timeout=1,
        concurrency=1,
        transport_factory=lambda: httpx.MockTransport(_handler),
    )
    assert [(r.status, r.source) for r in scan.endpoints] == [("unreachable", "test")]
    assert "did not answer" in scan.endpoints[0].detail


def test_targets_come_from_every_setting_deduplicated() -> None:
    settings = Settings.model_validate(
        {
            "external": {"endpoint": "http://10.0.0.5:8000/v1", "host": "10.0.0.6", "port": 9000},
            "discovery": {
                "probe_targets": ["127.0.0.1:8000-8002", "10.0.0.5:8000"],
                "probe_engine_range": True,
            },
            "engine": {"port_range_start": 8200, "port_range_end": 8203},
        }
    )
    targets = targets_from_settings(settings, ["127.0.0.1:8001", "localhost:7000"])
    urls = [t.base_url for t in targets]
    assert urls[:2] == ["http://10.0.0.5:8000", "http://10.0.0.6:9000"]
    assert len(urls) == len(set(urls)) == 2 + 3 + 4 + 1
    assert targets[0].source == "VLLM_API_ENDPOINT" and targets[0].explicit
    assert next(t for t in targets if t.base_url.endswith(":8001")).explicit is False  # first source wins
    assert next(t for t in targets if t.base_url.endswith(":7000")).explicit is True
    with pytest.raises(InvalidRequest, match="not host:port"):
        targets_from_settings(settings, ["8000"])


@pytest.mark.vllm
@pytest.mark.timeout(300)
@pytest.mark.anyio
async def test_finds_the_real_vllm_and_labels_a_plain_server(real_vllm: RunningVllm) -> None:
    closed = free_port()
    with serving(plain_app()) as plain:
        plain_port = int(plain.rsplit(":", 1)[1])
        settings = Settings.model_validate(
            {
                "discovery": {
                    "probe_targets": [
                        f"127.0.0.1:{real_vllm.port}",
                        f"127.0.0.1:{plain_port}",
                    ],
                    "probe_engine_range": False,
                    "probe_timeout_s": 5,
                }
            }
        )
        targets = targets_from_settings(settings, [f"127.0.0.1:{closed}"])
        scan = await discover(targets, timeout=5, concurrency=8)
    by_url = {r.url: r for r in scan.endpoints}
    found = by_url[real_vllm.base_url]
    assert found.status == "vllm", json.dumps(found.model_dump())
    assert found.version is not None and found.version.startswith("0.32.0")
    assert [m.id for m in found.models] == [real_vllm.served_name]
    assert found.max_model_len == 2048 and found.sleeping is False
    assert {"vllm: metrics", "/v1/models with max_model_len"} <= set(found.evidence)
    assert by_url[plain].status == "not-vllm"
    assert by_url[f"http://127.0.0.1:{closed}"].status == "unreachable"  # named in the call: reported
