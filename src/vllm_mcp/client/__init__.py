"""The daemon's client side: ``DaemonClient`` (httpx over the control socket)."""

from vllm_mcp.client.daemon_client import DaemonClient

__all__ = ["DaemonClient"]
