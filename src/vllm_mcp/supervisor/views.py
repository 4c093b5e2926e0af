"""Records → wire views."""

from __future__ import annotations

from vllm_mcp.api.instances import EngineSpecView, ErrorInfo, InstanceView
from vllm_mcp.core.instance import InstanceRecord


def base_url(host: str, port: int) -> str:
    """Where a local instance answers (a wildcard bind is reached over loopback)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def to_view(record: InstanceRecord, host: str) -> InstanceView:
    err = record.last_error
    return InstanceView(
        name=record.name,
        model=record.spec.model,
        state=record.state,
        port=record.port,
        base_url=base_url(host, record.port) if record.port is not None else None,
        pid=record.pid,
        external=False,
        gpus=list(record.spec.gpus),
        spec=EngineSpecView.of(record.spec),
        loras=sorted(record.loras),
        sleep_level=record.sleep_level,
        started_at=record.started_at,
        ready_at=record.ready_at,
        state_since=record.state_since,
        last_error=ErrorInfo(
            message=err.message, code=err.code, exit_code=err.exit_code, log_tail=err.log_tail
        )
        if err
        else None,
        restarts=record.restarts,
        log_path=record.log_path,
    )
