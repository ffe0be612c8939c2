"""The text format of LLM-Adapters records (used by DoRA, HiRA and GateRA for commonsense reasoning).

A record's prompt is the Alpaca-style template below (`render_prompt`); its response is
``f"{RESPONSE_PREFIX} {label}"``. Training data, evaluation items, diagnostics and the CLI all build their
text from here, so the format is written once.
"""

from __future__ import annotations

RESPONSE_PREFIX = "the correct answer is"

PROMPT_WITHOUT_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)
PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)


def render_prompt(instruction: str, input_text: str = "") -> str:
    """The prompt that precedes the response; the input section appears only when ``input_text`` is non-empty."""
    if input_text:
        return PROMPT_WITH_INPUT.format(instruction=instruction, input=input_text)
    return PROMPT_WITHOUT_INPUT.format(instruction=instruction)
