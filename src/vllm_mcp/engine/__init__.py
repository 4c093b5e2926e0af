"""engine layer: talking to one vLLM server over HTTP (client) and reading its metrics."""

from vllm_mcp.engine.client import KEEPALIVE_EXPIRY_S, ModelCard, VllmClient, vllm_error_message

__all__ = ["KEEPALIVE_EXPIRY_S", "ModelCard", "VllmClient", "vllm_error_message"]
