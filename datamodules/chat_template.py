"""Prompts and responses in the tokenizer's own chat format (``tokenizer.apply_chat_template``).

The prompt is the conversation of one user message with the template's generation prompt, e.g. for
SmolLM2-Instruct::

    <|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n{message}<|im_end|>\\n<|im_start|>assistant\\n

The response is the output followed by the template's end of turn: the text that the template writes
after an assistant message, without trailing whitespace (SmolLM2 ends a turn with ``<|im_end|>\\n``, so
``<|im_end|>``, which is also its eos token: generation stops there; the newline only separates the next
turn). A template that writes nothing after a turn gets the tokenizer's eos token instead.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from gatera_lab.errors import ConfigError

_PROBE = "\x00gatera-lab response probe\x00"


def _require_template(tokenizer: PreTrainedTokenizerBase) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"option 'prompt_template' is 'chat', but the tokenizer {tokenizer.name_or_path!r} has no chat "
            "template; use 'alpaca', 'plain' or a format string"
        )


def without_duplicate_bos(text: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """``text`` without a leading bos token when the tokenizer adds one itself (it would appear twice)."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer.bos_token_id in tokenizer("")["input_ids"]:
        return text[len(bos) :]
    return text


def chat_prompt(message: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """The text before the answer to one user ``message`` (with the template's generation prompt)."""
    _require_template(tokenizer)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False
    )
    return without_duplicate_bos(text, tokenizer)


def end_of_turn(tokenizer: PreTrainedTokenizerBase) -> str:
    """What the template writes after an assistant message, trailing whitespace removed ("" if nothing)."""
    _require_template(tokenizer)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "?"}, {"role": "assistant", "content": _PROBE}], tokenize=False
    )
    if _PROBE not in text:
        raise ConfigError(
            f"the chat template of {tokenizer.name_or_path!r} does not write the assistant's message as it "
            "is; use prompt_template 'alpaca', 'plain' or a format string"
        )
    return text[text.index(_PROBE) + len(_PROBE) :].rstrip()
