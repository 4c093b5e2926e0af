"""`vllm-mcp daemon run|start|stop|status`."""

from __future__ import annotations

import argparse
import time

import anyio

from vllm_mcp.cli.common import add_json_flag, emit_json, out, run_async, settings_from
from vllm_mcp.client import DaemonClient
from vllm_mcp.errors import DaemonUnavailable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("daemon", help="run, start, stop or inspect the daemon")
    dsub = p.add_subparsers(dest="daemon_cmd", required=True, metavar="{run,start,stop,status}")
    dsub.add_parser("run", help="run the daemon in the foreground (Ctrl-C stops it)").set_defaults(
        handler=run_cmd
    )
    dsub.add_parser("start", help="start the daemon detached, if none is running").set_defaults(
        handler=start_cmd
    )
    stop = dsub.add_parser("stop", help="stop the daemon and every instance it owns")
    stop.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    stop.set_defaults(handler=stop_cmd)
    status = dsub.add_parser("status", help="is the daemon running, and where are its files")
    add_json_flag(status)
    status.set_defaults(handler=status_cmd)


def run_cmd(args: argparse.Namespace) -> int:
    from vllm_mcp.daemon.server import serve

    return serve(settings_from(args).settings)


def start_cmd(args: argparse.Namespace) -> int:
    settings = settings_from(args).settings

    async def go() -> int:
        async with DaemonClient(settings) as client:
            await client.ensure_running()
            info = await client.info()
        out.print(f"daemon running (pid {info.pid}) on unix:{info.socket_path}")
        return 0

    return run_async(go)


def stop_cmd(args: argparse.Namespace) -> int:
    settings = settings_from(args).settings

    async def go() -> int:
        async with DaemonClient(settings, autostart=False) as client:
            if not await client.is_up():
                out.print("daemon not running")
                return 0
            await client.request("POST", "/v1/daemon/shutdown")
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                if not settings.socket_path.exists() and not await client.is_up():
                    out.print("daemon stopped")
                    return 0
                await anyio.sleep(0.1)
        raise DaemonUnavailable(
            f"the daemon did not stop within {args.timeout:.0f} s",
            hint="Read its log; as a last resort kill its pid.",
        )

    return run_async(go)


def status_cmd(args: argparse.Namespace) -> int:
    settings = settings_from(args).settings

    async def go() -> int:
        async with DaemonClient(settings, autostart=False) as client:
            if not await client.is_up():
                if args.json:
                    emit_json({"running": False, "socket_path": str(settings.socket_path)})
                else:
                    out.print(f"daemon not running (socket {settings.socket_path})")
                return 3
            info = await client.info()
        if args.json:
            emit_json({"running": True, **info.model_dump()})
        else:
            out.print(
                f"daemon running: pid {info.pid}, version {info.version}, "
                f"up {time.time() - info.started_at:.0f} s"
            )
            out.print(f"  socket {info.socket_path}\n  db     {info.db_path}\n  logs   {info.log_dir}")
        return 0

    return run_async(go)
