"""Configuration: one pydantic settings tree, loaded from defaults, a TOML file and the environment."""

from vllm_mcp.config.loader import SEED_ENV, LoadedSettings, effective_values, load_settings
from vllm_mcp.config.settings import Settings

__all__ = ["SEED_ENV", "LoadedSettings", "Settings", "effective_values", "load_settings"]
