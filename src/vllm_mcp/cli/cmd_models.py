"""`vllm-mcp models|load|unload|sleep|wake|switch|status|logs` — the model manager from a shell."""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner

from vllm_mcp.api.instances import InstanceView, LoadRequest
from vllm_mcp.api.manager import SwitchRequest
from vllm_mcp.cli.common import add_json_flag, emit_json, out, run_async, settings_from, table
from vllm_mcp.client import DaemonClient
from vllm_mcp.client.models_api import ModelsApi
from vllm_mcp.core.lifecycle import SETTLED_STATES, State
from vllm_mcp.errors import EngineStartFailed


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="list instances and presets")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _models))

    p = sub.add_parser("status", help="show one instance (or all)")
    p.add_argument("name", nargs="?", help="served name (omit for all)")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _status))

    _register_load(sub)
    _register_actions(sub)


def _register_load(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("load", help="start a model and show progress until it is ready")
    p.add_argument("model", nargs="?", help="HF id (org/name) or local path; omit with --preset")
    p.add_argument("--preset", help="start from a saved preset")
    p.add_argument("--served-name", help="name clients use as `model`")
    p.add_argument("--tp", "--tensor-parallel-size", dest="tensor_parallel_size", type=int)
    p.add_argument("--pp", "--pipeline-parallel-size", dest="pipeline_parallel_size", type=int)
    p.add_argument("--gpu-memory-utilization", type=float)
    p.add_argument("--kv-cache-memory-bytes", type=int)
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--dtype")
    p.add_argument("--quantization")
    p.add_argument("--kv-cache-dtype")
    p.add_argument("--enforce-eager", action="store_true", default=None)
    p.add_argument("--enable-lora", action="store_true", default=None)
    p.add_argument("--max-loras", type=int)
    p.add_argument("--max-lora-rank", type=int)
    p.add_argument("--gpus", type=lambda s: [int(x) for x in s.split(",") if x], help="e.g. 0,1")
    p.add_argument("--port", type=int)
    p.add_argument("--flag", dest="extra_flags", action="append", help="allowlisted engine flag (repeat)")
    p.add_argument(
        "--force", action="store_true", help="replace a different model using the name; skip the memory check"
    )
    p.add_argument("--no-wait", action="store_true", help="return once the start is under way")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait (default 900)")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _load))


def _register_actions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:

    for verb, helptext in (
        ("unload", "stop an instance and its process group"),
        ("wake", "wake a sleeping instance"),
        ("restart", "restart an instance with the same config"),
    ):
        p = sub.add_parser(verb, help=helptext)
        p.add_argument("name", help="served name")
        add_json_flag(p)
        p.set_defaults(handler=lambda a, v=verb: _with_api(a, lambda api, args: _simple(api, args, v)))

    p = sub.add_parser("sleep", help="put a ready instance to sleep")
    p.add_argument("name", help="served name")
    p.add_argument("--level", type=int, choices=(1, 2), default=1)
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, lambda api, args: _simple(api, args, "sleep")))

    p = sub.add_parser("switch", help="bring a model up, then sleep or unload the current one")
    p.add_argument("target", help="model id/path, or a preset with --preset")
    p.add_argument("--preset", action="store_true", help="TARGET names a preset")
    p.add_argument("--served-name")
    p.add_argument("--from", dest="from_name", help="instance to retire")
    p.add_argument("--then", choices=("sleep", "unload", "keep"), default="sleep")
    p.add_argument("--level", type=int, choices=(1, 2), default=1)
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _switch))

    p = sub.add_parser("logs", help="print the end of an instance's vLLM log")
    p.add_argument("name")
    p.add_argument("-n", "--lines", type=int, default=100)
    p.add_argument("--before", type=int, help="page back from this line number")
    add_json_flag(p)
    p.set_defaults(handler=lambda a: _with_api(a, _logs))


def _with_api(args: argparse.Namespace, fn: Callable[[ModelsApi, argparse.Namespace], Awaitable[int]]) -> int:
    settings = settings_from(args).settings

    async def go() -> int:
        async with DaemonClient(settings, actor="cli") as daemon:
            return await fn(ModelsApi(daemon), args)

    return run_async(go)


def _row(v: InstanceView) -> list[Any]:
    return [
        v.name,
        v.state.value,
        v.base_url or "",
        v.pid or "",
        v.model,
        ", ".join(v.loras),
        "external" if v.external else "",
    ]


async def _models(api: ModelsApi, args: argparse.Namespace) -> int:
    instances, presets = await api.list(), await api.list_presets()
    if args.json:
        emit_json(
            {
                "instances": [v.model_dump(mode="json") for v in instances],
                "presets": [p.model_dump(mode="json") for p in presets],
            }
        )
        return 0
    out.print(
        table("instances", ["name", "state", "url", "pid", "model", "LoRA", ""], [_row(v) for v in instances])
        if instances
        else "no instances"
    )
    if presets:
        out.print(
            table(
                "presets",
                ["name", "model", "description"],
                [[p.name, p.model, p.description] for p in presets],
            )
        )
    return 0


async def _status(api: ModelsApi, args: argparse.Namespace) -> int:
    if not args.name:
        return await _models(api, args)
    view = await api.get(args.name)
    _show(view, args.json)
    return 0 if view.state is not State.FAILED else 1


def _show(view: InstanceView, as_json: bool) -> None:
    if as_json:
        emit_json(view.model_dump(mode="json"))
        return
    from vllm_mcp.mcp.render import instance

    out.print(instance(view), markup=False)


async def _load(api: ModelsApi, args: argparse.Namespace) -> int:
    fields = {k: v for k, v in vars(args).items() if k in LoadRequest.model_fields and v is not None}
    fields["served_name"] = args.served_name
    view = await api.load(LoadRequest.model_validate(fields | {"wait": False}))
    if not args.no_wait:
        view = await _follow(api, view, args.timeout, quiet=args.json)
    _show(view, args.json)
    if view.state is State.FAILED:
        return 1
    return 0 if view.state is State.READY or args.no_wait else 1


async def _follow(api: ModelsApi, view: InstanceView, timeout: float, *, quiet: bool) -> InstanceView:
    """Poll until the instance settles, with a live spinner: state, elapsed, last log line."""
    start = time.monotonic()
    spinner = Spinner("dots", text=f"{view.name}: {view.state.value}")
    with Live(spinner, console=Console(stderr=True, quiet=quiet), transient=True):
        while view.state not in SETTLED_STATES and time.monotonic() - start < timeout:
            view = await api.wait(view.name, 2.0)
            last = ""
            try:
                page = await api.logs(view.name, 1)
                last = page.lines[-1][-100:] if page.lines else ""
            except EngineStartFailed:
                pass
            spinner.update(text=f"{view.name}: {view.state.value} ({time.monotonic() - start:.0f} s)  {last}")
    return view


async def _simple(api: ModelsApi, args: argparse.Namespace, verb: str) -> int:
    if verb == "unload":
        view = await api.unload(args.name)
    elif verb == "wake":
        view = await api.wake(args.name)
    elif verb == "restart":
        view = await api.restart(args.name)
    else:
        view = await api.sleep(args.name, args.level)
    _show(view, args.json)
    return 0


async def _switch(api: ModelsApi, args: argparse.Namespace) -> int:
    target = (
        LoadRequest(preset=args.target, served_name=args.served_name)
        if args.preset
        else LoadRequest(model=args.target, served_name=args.served_name)
    )
    status = await api.switch(
        SwitchRequest(to=target, from_name=args.from_name, then=args.then, sleep_level=args.level)
    )
    if args.json:
        emit_json(status.model_dump(mode="json"))
    else:
        from vllm_mcp.mcp.render import switch

        out.print(switch(status), markup=False)
    return 1 if status.phase == "failed" else 0


async def _logs(api: ModelsApi, args: argparse.Namespace) -> int:
    page = await api.logs(args.name, args.lines, args.before)
    if args.json:
        emit_json(page.model_dump(mode="json"))
    else:
        from vllm_mcp.mcp.render import logs

        out.print(logs(page), markup=False)
    return 0
