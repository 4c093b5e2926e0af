"""engine layer: talking to one vLLM server over HTTP (client), reading its metrics, and reading
the model artefacts vLLM will load (``model_files``: safetensors headers, shared by discovery
and the optimizer)."""

from vllm_mcp.engine.client import KEEPALIVE_EXPIRY_S, ModelCard, VllmClient, vllm_error_message

__all__ = ["KEEPALIVE_EXPIRY_S", "ModelCard", "VllmClient", "vllm_error_message"]
