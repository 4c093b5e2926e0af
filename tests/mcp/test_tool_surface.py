"""The public MCP surface: names, annotations, described parameters, and generated docs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from vllm_mcp.mcp.base import MAX_QUALIFIED, TOOL_NAME, qualified_name
from vllm_mcp.mcp.docs import render_markdown, tool_definitions

Defs = dict[str, list[dict[str, Any]]]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def defs() -> Defs:
    return anyio.run(tool_definitions)


def test_every_tool_is_kebab_case_within_64_chars_and_annotated(defs: Defs) -> None:
    for server, tools in defs.items():
        assert tools, server
        for t in tools:
            assert TOOL_NAME.match(t["name"]), t["name"]
            assert len(qualified_name(server, t["name"])) <= MAX_QUALIFIED
            ann = t["annotations"]
            assert {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"} <= set(ann)
            assert not (ann["readOnlyHint"] and ann["destructiveHint"])
            assert t.get("description"), t["name"]
            assert "outputSchema" in t, t["name"]


def test_every_parameter_has_a_description(defs: Defs) -> None:
    for tools in defs.values():
        for t in tools:
            for name, schema in t["inputSchema"].get("properties", {}).items():
                assert schema.get("description"), f"{t['name']}.{name} has no description"


def test_generated_tool_docs_are_current(defs: Defs) -> None:
    assert (DOCS / "tools.md").read_text() == render_markdown(defs), "run `make docs`"
    assert json.loads((DOCS / "tools.json").read_text()) == defs, "run `make docs`"
