"""Readable text for tool results (Crush and most agents read text only, not structured data)."""

from __future__ import annotations

import time

from vllm_mcp.api.instances import InstanceView, LogPage, PresetView
from vllm_mcp.api.manager import SwitchStatus
from vllm_mcp.core.lifecycle import State

NEXT_STEP = {
    State.STARTING: "it is loading; call wait-for-model to wait for it (≤ 50 s per call)",
    State.WAKING: "it is waking; call wait-for-model",
    State.SLEEPING: "call wake-model (or just send a request through the gateway)",
    State.FAILED: "read get-model-logs, fix the config, then load-model again",
    State.STOPPED: "call load-model to start it",
}


def _ago(ts: float | None) -> str:
    if ts is None:
        return "?"
    secs = max(0, int(time.time() - ts))
    return f"{secs // 3600}h{secs % 3600 // 60:02d}m" if secs >= 3600 else f"{secs // 60}m{secs % 60:02d}s"


def instance(view: InstanceView, *, verbose: bool = True) -> str:
    where = f" at {view.base_url}" if view.base_url and view.state is not State.STOPPED else ""
    head = f"{view.name}: {view.state.value}{where} (for {_ago(view.state_since)})"
    if not verbose:
        return head
    lines = [
        head,
        f"  model: {view.model}" + ("  [external: never stopped by vllm-mcp]" if view.external else ""),
    ]
    if view.spec is not None:
        s = view.spec
        mem = (
            f"kv-cache {s.kv_cache_memory_bytes:,} B"
            if s.kv_cache_memory_bytes
            else f"gpu-mem {s.gpu_memory_utilization}"
            if s.gpu_memory_utilization
            else "default memory"
        )
        lines.append(
            f"  engine: tp={s.tensor_parallel_size} pp={s.pipeline_parallel_size} {mem}"
            f" max-len={s.max_model_len or 'model default'} dtype={s.dtype or 'auto'}"
            + (f" quant={s.quantization}" if s.quantization else "")
            + (f" gpus={','.join(map(str, s.gpus))}" if s.gpus else "")
        )
    if view.pid:
        lines.append(f"  pid: {view.pid}")
    if view.loras:
        lines.append(f"  LoRA adapters: {', '.join(view.loras)}")
    if view.restarts:
        lines.append(f"  restarts after crashes: {view.restarts}")
    if view.last_error is not None and view.state is State.FAILED:
        err = view.last_error
        code = f" (exit code {err.exit_code})" if err.exit_code is not None else ""
        lines.append(f"  error: {err.message}{code}")
        if err.log_tail:
            lines.append("  log tail:\n    " + "\n    ".join(err.log_tail.splitlines()[-15:]))
    if view.state in NEXT_STEP:
        lines.append(f"  next: {NEXT_STEP[view.state]}")
    return "\n".join(lines)


def instances(views: list[InstanceView]) -> str:
    if not views:
        return "No instances. Start one with load-model (model id/path or a preset)."
    return "\n".join(instance(v, verbose=False) for v in views)


def presets(items: list[PresetView]) -> str:
    if not items:
        return "No presets. Save one with save-preset."
    return "\n".join(f"{p.name}: {p.model}" + (f" — {p.description}" if p.description else "") for p in items)


def logs(page: LogPage) -> str:
    header = f"{page.path}: lines {page.offset + 1}-{page.offset + len(page.lines)} of {page.total_lines}"
    more = (
        f"\n(older lines exist: call again with before={page.next_offset})"
        if page.next_offset is not None
        else ""
    )
    return header + "\n" + "\n".join(page.lines) + more


def switch(status: SwitchStatus) -> str:
    parts = [f"switch: {status.phase}"]
    if status.message:
        parts.append(status.message)
    if status.target is not None:
        parts.append("target " + instance(status.target, verbose=False))
    if status.previous is not None:
        parts.append("previous " + instance(status.previous, verbose=False))
    if status.phase in ("bringing_up", "retiring"):
        parts.append("next: the switch continues in the daemon; call wait-for-model on the target")
    return "\n".join(parts)
