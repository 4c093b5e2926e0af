"""The SQLite state store (one writer: the daemon)."""

from vllm_mcp.store.db import Database

__all__ = ["Database"]
