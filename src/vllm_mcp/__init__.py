"""vllm-mcp: a control plane for vLLM driven by AI coding agents over MCP."""

__version__ = "0.1.0"
