"""The `vllm-mcp` command line. Each verb lives in a ``cmd_*`` module with ``register()``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vllm_mcp import __version__
from vllm_mcp.cli import cmd_config, cmd_daemon, cmd_discover, cmd_mcp, cmd_models, cmd_optimizer
from vllm_mcp.cli.common import print_error
from vllm_mcp.errors import VllmMcpError

COMMANDS = [cmd_daemon, cmd_models, cmd_optimizer, cmd_discover, cmd_mcp, cmd_config]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vllm-mcp",
        description="A control plane for vLLM: a daemon that owns vLLM engines, MCP servers for "
        "coding agents, and a CLI.",
    )
    parser.add_argument("--version", action="version", version=f"vllm-mcp {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config file (default: $VLLM_MCP_CONFIG or the platform config dir)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except VllmMcpError as exc:
        print_error(exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
