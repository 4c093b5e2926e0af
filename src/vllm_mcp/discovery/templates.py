"""What a chat template says about tool calling and reasoning, and which vLLM parsers fit.

vLLM needs ``--enable-auto-tool-choice --tool-call-parser NAME`` to turn a model's tool-call
text into OpenAI ``tool_calls``, and ``--reasoning-parser NAME`` to split reasoning from the
answer. The right parser follows from the syntax the chat template emits, so the rules below
look for each syntax's tell-tale markers, most specific first. Names are vLLM 0.32's; a name
the installed vLLM does not register is never suggested (``suggest`` takes the known names).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from vllm_mcp.api.discovery import ChatTemplateInfo


@dataclass(frozen=True)
class _Rule:
    parser: str
    label: str
    markers: tuple[str, ...]  # all must appear in the template


#: Tool-call syntaxes, most specific first (Qwen3-Coder's XML also uses <tool_call>).
TOOL_RULES: tuple[_Rule, ...] = (
    _Rule("qwen3_coder", "<tool_call><function=…> XML (Qwen3-Coder)", ("<tool_call>", "<function=")),
    _Rule("glm45", "<tool_call> with <arg_key> (GLM-4.5)", ("<tool_call>", "<arg_key>")),
    _Rule("hermes", "<tool_call> JSON (Hermes/Qwen)", ("<tool_call>",)),
    _Rule("mistral", "[TOOL_CALLS] JSON (Mistral)", ("[TOOL_CALLS]",)),
    _Rule("llama4_pythonic", "<|python_start|> pythonic calls (Llama 4)", ("<|python_start|>",)),
    _Rule("llama3_json", "JSON function calls (Llama 3.1+)", ("<|python_tag|>",)),
    _Rule("llama3_json", "JSON function calls (Llama 3.1+)", ("ipython", "tools")),
    _Rule("deepseek_v3", "<｜tool▁calls▁begin｜> (DeepSeek-V3)", ("<｜tool▁calls▁begin｜>",)),
    _Rule("kimi_k2", "<|tool_calls_section_begin|> (Kimi K2)", ("<|tool_calls_section_begin|>",)),
    _Rule("openai", "harmony channels (gpt-oss)", ("<|channel|>", "<|call|>")),
    _Rule("granite", "<|tool_call|> JSON (Granite)", ("<|tool_call|>",)),
    _Rule("internlm", "<|action_start|><|plugin|> (InternLM)", ("<|action_start|>", "<|plugin|>")),
)


def _reasoning(template: str, model_type: str | None) -> tuple[str | None, str | None]:
    """(parser, label) for the reasoning syntax of a template, or (None, None)."""
    mt = (model_type or "").lower()
    if "<|channel|>" in template and "analysis" in template:
        return "openai_gptoss", "harmony analysis channel (gpt-oss)"
    if "[THINK]" in template:
        return "mistral", "[THINK] blocks (Mistral)"
    if "<think>" not in template:
        return None, None
    if "enable_thinking" in template or mt.startswith("qwen3"):
        return "qwen3", "<think> blocks, switchable by enable_thinking (Qwen3)"
    if mt.startswith("glm4"):
        return "glm45", "<think> blocks (GLM-4.5)"
    return "deepseek_r1", "<think> blocks (DeepSeek-R1 style)"


def analyse(template: str | None, source: str | None, model_type: str | None) -> ChatTemplateInfo:
    """Describe a chat template (``None`` → not present), with the parsers its syntax needs.

    A tool parser is only named when the template renders tools at all.
    """
    if not template:
        return ChatTemplateInfo(present=False)
    tool = next((r for r in TOOL_RULES if all(m in template for m in r.markers)), None)
    reasoning, reasoning_label = _reasoning(template, model_type)
    mentions_tools = "tools" in template
    return ChatTemplateInfo(
        present=True,
        source=source,
        mentions_tools=mentions_tools,
        tool_call_format=tool.label if tool else None,
        reasoning_format=reasoning_label,
        tool_call_parser=tool.parser if tool and mentions_tools else None,
        reasoning_parser=reasoning,
    )


def suggest(
    info: ChatTemplateInfo | None,
    tool_parsers: Collection[str] | None,
    reasoning_parsers: Collection[str] | None,
) -> tuple[str | None, str | None]:
    """(tool-call parser, reasoning parser) the installed vLLM can use for this template.

    ``*_parsers`` are the names that vLLM registers (``None``: unknown, trust the rules).
    """
    if info is None or not info.present:
        return None, None
    tool, reasoning = info.tool_call_parser, info.reasoning_parser
    if tool and tool_parsers is not None and tool not in tool_parsers:
        tool = None
    if reasoning and reasoning_parsers is not None and reasoning not in reasoning_parsers:
        reasoning = None
    return tool, reasoning
