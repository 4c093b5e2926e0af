"""The supervisor layer: owns the ``vllm serve`` processes of the daemon (docs/supervisor.md).

Public surface: ``Supervisor`` (and ``StartHook``, ``Subscription`` in its signatures). The other
modules are internals of the layer.
"""

from vllm_mcp.supervisor.supervisor import StartHook, Subscription, Supervisor

__all__ = ["StartHook", "Subscription", "Supervisor"]
