"""Every control-API endpoint group, in the order they appear in the OpenAPI document."""

from vllm_mcp.daemon.routes import discovery, models, optimizer, system
from vllm_mcp.daemon.routing import EndpointGroup

GROUPS: list[EndpointGroup] = [system.group, models.group, discovery.group, optimizer.group]
