"""The exception tree of vllm-mcp. Imports nothing from the package.

Every error carries a stable ``code`` (used on the wire), a human ``message`` saying what went
wrong, a ``hint`` saying what to do next, and ``context`` (model, exit code, log tail, …).
Errors are translated at three boundaries: vLLM HTTP → ``Upstream*``; domain → control-API JSON
``{code, message, hint, context}``; domain → MCP tool error text with the next step.

    VllmMcpError                      base of everything raised on purpose
    ├── ConfigError                   a bad setting; names the key and the source it came from
    ├── InvalidRequest                bad input from a caller (tool argument, CLI flag, HTTP body)
    ├── NotFound                      unknown model, instance, preset, adapter, route
    ├── Conflict                      the request clashes with the current state
    │   ├── InvalidTransition         a lifecycle edge that is not in the transition table
    │   └── PortInUse                 the requested port is taken
    ├── DoesNotFit                    the memory estimator says the config cannot fit
    ├── UpstreamError                 talking to a vLLM server went wrong
    │   ├── UpstreamUnavailable       no answer: refused, reset, timed out
    │   └── UpstreamHTTPError         vLLM answered with an error status (status, vLLM's message)
    ├── EngineError                   a vLLM process misbehaved
    │   ├── EngineStartFailed         exited while starting (exit code, log tail)
    │   ├── EngineStartTimeout        never became ready within the limit
    │   └── EngineCrashed             a ready engine died (exit code, log tail)
    ├── StoreError                    the SQLite state store failed
    │   └── SnapshotDecryptError      wrong ENCRYPTION_KEY or a tampered snapshot
    ├── DaemonUnavailable             the control API does not answer and could not be started
    └── Busy                          a bounded queue is full (retry_after seconds)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "Busy",
    "ConfigError",
    "Conflict",
    "DaemonUnavailable",
    "DoesNotFit",
    "EngineCrashed",
    "EngineError",
    "EngineStartFailed",
    "EngineStartTimeout",
    "InvalidRequest",
    "InvalidTransition",
    "NotFound",
    "PortInUse",
    "SnapshotDecryptError",
    "StoreError",
    "UpstreamError",
    "UpstreamHTTPError",
    "UpstreamUnavailable",
    "VllmMcpError",
    "error_from_wire",
]


class VllmMcpError(Exception):
    """Base class. ``str(err)`` is the message; ``hint`` says what to do next."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500
    default_hint: ClassVar[str] = ""

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        self.context: dict[str, Any] = context

    def to_wire(self) -> dict[str, Any]:
        """The control-API JSON body for this error."""
        return {"code": self.code, "message": self.message, "hint": self.hint, "context": self.context}

    def describe(self) -> str:
        """Message plus hint, for a person or an agent reading text."""
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(VllmMcpError):
    code = "config_error"
    default_hint = "Fix the setting named above (see `vllm-mcp config show`) and try again."

    def __init__(self, message: str, *, key: str, hint: str | None = None, **ctx: Any) -> None:
        super().__init__(message, hint=hint, key=key, **ctx)
        self.key = key


class InvalidRequest(VllmMcpError):
    code = "invalid_request"
    http_status = 422
    default_hint = "Correct the argument named above and call again."


class NotFound(VllmMcpError):
    code = "not_found"
    http_status = 404


class Conflict(VllmMcpError):
    code = "conflict"
    http_status = 409


class InvalidTransition(Conflict):
    code = "invalid_transition"


class PortInUse(Conflict):
    code = "port_in_use"
    default_hint = "Pick another port, or leave the port out to get a free one from the range."


class DoesNotFit(VllmMcpError):
    code = "does_not_fit"
    http_status = 409


class UpstreamError(VllmMcpError):
    code = "upstream_error"
    http_status = 502


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    default_hint = "Check that the vLLM server is running and reachable at that address."


class UpstreamHTTPError(UpstreamError):
    code = "upstream_http_error"

    def __init__(self, message: str, *, status: int, hint: str | None = None, **ctx: Any) -> None:
        super().__init__(message, hint=hint, status=status, **ctx)
        self.status = status


class EngineError(VllmMcpError):
    code = "engine_error"
    default_hint = "Read the log tail above, fix the engine flags, and load again."


class EngineStartFailed(EngineError):
    code = "engine_start_failed"


class EngineStartTimeout(EngineError):
    code = "engine_start_timeout"
    http_status = 504
    default_hint = "Raise the start timeout, or read the log for what the engine is waiting on."


class EngineCrashed(EngineError):
    code = "engine_crashed"


class StoreError(VllmMcpError):
    code = "store_error"


class SnapshotDecryptError(StoreError):
    code = "snapshot_decrypt_error"
    default_hint = "Set ENCRYPTION_KEY to the key the snapshot was written with."


class DaemonUnavailable(VllmMcpError):
    code = "daemon_unavailable"
    http_status = 503
    default_hint = "Start it with `vllm-mcp daemon start` and read its log in the state dir."


class Busy(VllmMcpError):
    code = "busy"
    http_status = 503
    default_hint = "Retry after the number of seconds given."

    def __init__(self, message: str, *, retry_after: float, hint: str | None = None, **ctx: Any) -> None:
        super().__init__(message, hint=hint, retry_after=retry_after, **ctx)
        self.retry_after = retry_after


def _all_subclasses(cls: type[VllmMcpError]) -> list[type[VllmMcpError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_from_wire(body: dict[str, Any]) -> VllmMcpError:
    """Rebuild the error a daemon sent as JSON (the client side of ``to_wire``)."""
    by_code = {c.code: c for c in _all_subclasses(VllmMcpError)}
    cls = by_code.get(str(body.get("code", "")), VllmMcpError)
    context = dict(body.get("context") or {})
    message = str(body.get("message", "unknown error"))
    hint = body.get("hint")
    err = VllmMcpError.__new__(cls)
    VllmMcpError.__init__(err, message, hint=hint, **context)
    for attr in ("key", "status", "retry_after"):
        if attr in context:
            setattr(err, attr, context[attr])
    return err
