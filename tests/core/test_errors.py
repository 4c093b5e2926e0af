from __future__ import annotations

from vllm_mcp import errors
from vllm_mcp.errors import (
    Busy,
    ConfigError,
    EngineStartFailed,
    UpstreamHTTPError,
    VllmMcpError,
    error_from_wire,
)


def test_every_error_class_has_a_unique_code() -> None:
    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))


def test_the_docstring_tree_names_every_error_class() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, VllmMcpError):
            assert name in doc, f"{name} is missing from the tree in errors.py"


def test_wire_round_trip_keeps_type_context_and_special_attributes() -> None:
    originals: list[VllmMcpError] = [
        EngineStartFailed("vLLM exited", exit_code=1, log_tail="boom"),
        UpstreamHTTPError("bad", status=404, url="http://x/v1/models"),
        Busy("queue full", retry_after=2.5),
        ConfigError("bad key", key="engine.port_range_end"),
    ]
    for original in originals:
        back = error_from_wire(original.to_wire())
        assert type(back) is type(original)
        assert back.message == original.message
        assert back.hint == original.hint
        assert back.context == original.context
    assert error_from_wire(originals[1].to_wire()).status == 404  # type: ignore[attr-defined]
    assert error_from_wire(originals[2].to_wire()).retry_after == 2.5  # type: ignore[attr-defined]


def test_unknown_wire_code_becomes_the_base_error() -> None:
    err = error_from_wire({"code": "from_the_future", "message": "m"})
    assert type(err) is VllmMcpError
    assert err.describe() == "m"
