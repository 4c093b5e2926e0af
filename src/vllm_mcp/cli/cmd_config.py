"""`vllm-mcp config show`: the effective settings and where each value came from."""

from __future__ import annotations

import argparse

from vllm_mcp.cli.common import add_json_flag, emit_json, out, settings_from, table
from vllm_mcp.config import SEED_ENV, effective_values


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="show the effective configuration")
    csub = p.add_subparsers(dest="config_cmd", required=True, metavar="{show,env}")
    show = csub.add_parser("show", help="print every setting, its value and its source")
    add_json_flag(show)
    show.set_defaults(handler=show_cmd)
    env = csub.add_parser("env", help="list the environment variables vllm-mcp reads")
    env.set_defaults(handler=env_cmd)


def show_cmd(args: argparse.Namespace) -> int:
    loaded = settings_from(args)
    rows = effective_values(loaded)
    if args.json:
        emit_json(
            {
                "config_file": str(loaded.config_path) if loaded.config_path else None,
                "settings": [{"key": k, "value": v, "source": s} for k, v, s in rows],
            }
        )
        return 0
    out.print(f"config file: {loaded.config_path or '(none; using defaults)'}")
    out.print(table(None, ["setting", "value", "source"], rows))
    return 0


def env_cmd(_: argparse.Namespace) -> int:
    rows = [(name, key) for name, key in SEED_ENV.items()]
    rows += [
        ("ALERT_THRESHOLD_<NAME>", "monitor.alert_thresholds.<name>"),
        ("VLLM_MCP__<SECTION>__<KEY>", "<section>.<key>"),
        ("VLLM_MCP_CONFIG", "path of the TOML config file"),
    ]
    out.print(table(None, ["environment variable", "setting"], rows))
    return 0
