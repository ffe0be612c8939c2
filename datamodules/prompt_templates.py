"""The ``prompt_template`` option: how a record's instruction (and input) become the text before its response.

- ``alpaca`` (default): the LLM-Adapters Alpaca template of `gatera_lab.evaluation.prompt_format`;
- ``chat``: the tokenizer's chat template, the instruction (and input) as one user message
  (`gatera_lab.datamodules.chat_template`); the response ends with the template's end of turn;
- ``plain``: the instruction as it is (followed by a blank line and the input when there is one);
- any other value: a Python format string with ``{instruction}`` and optionally ``{input}``, e.g.
  ``"Question: {instruction}\\nAnswer:"`` (literal braces are written ``{{`` and ``}}``).

The template applies to a record's instruction; a record with a ``prompt`` field instead has that text as
its whole prompt, whatever the template (as in `gatera_lab.datamodules.instruction_data.record_prompt`).
"""

from __future__ import annotations

import string

from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.chat_template import chat_prompt, end_of_turn
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.prompt_format import render_prompt

NAMED_TEMPLATES = ("alpaca", "chat", "plain")
PLACEHOLDERS = ("instruction", "input")


def _with_input(instruction: str, input_text: str) -> str:
    return f"{instruction}\n\n{input_text}" if input_text else instruction


def check_format_string(spec: str, option: str = "prompt_template") -> None:
    """A `ConfigError` naming ``option`` unless ``spec`` is a format string of ``{instruction}`` [``{input}``]."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(spec) if name is not None]
    except ValueError as error:
        raise ConfigError(
            f"option {option!r}: {spec!r} is not a valid format string ({error}); write literal braces "
            "as '{{' and '}}'"
        ) from error
    for field in fields:
        root = field.split(".")[0].split("[")[0]
        if root not in PLACEHOLDERS:
            raise ConfigError(
                f"option {option!r}: unknown placeholder {{{field}}} in {spec!r}; a format string may use "
                "{instruction} and {input} (literal braces are written '{{' and '}}')"
            )
    if "instruction" not in [field.split(".")[0].split("[")[0] for field in fields]:
        raise ConfigError(
            f"option {option!r} must be one of {', '.join(NAMED_TEMPLATES)} or a format string containing "
            f"{{instruction}}, got {spec!r}"
        )


class PromptTemplate:
    """One value of the ``prompt_template`` option, checked when it is built."""

    def __init__(self, spec: str, option: str = "prompt_template") -> None:
        if not isinstance(spec, str):
            raise ConfigError(f"option {option!r} must be a string, got {spec!r}")
        if spec not in NAMED_TEMPLATES:
            check_format_string(spec, option)
        self.spec = spec

    @property
    def is_chat(self) -> bool:
        return self.spec == "chat"

    def prompt(self, instruction: str, input_text: str, tokenizer: PreTrainedTokenizerBase) -> str:
        """The text before the response to ``instruction`` (and ``input_text``, "" for none)."""
        if self.spec == "alpaca":
            return render_prompt(instruction, input_text)
        if self.spec == "plain":
            return _with_input(instruction, input_text)
        if self.spec == "chat":
            return chat_prompt(_with_input(instruction, input_text), tokenizer)
        return self.spec.format(instruction=instruction, input=input_text)

    def response_end(self, tokenizer: PreTrainedTokenizerBase) -> str | None:
        """Text that ends every response (the chat template's end of turn), or None: the eos token does."""
        if self.is_chat:
            return end_of_turn(tokenizer) or None
        return None
