"""Evaluation items whose candidates are the choices' own texts (the choice-text format).

The prompt is tokenised with the tokenizer's special tokens, each choice as ``lead + text`` with none,
the two parts separately (so the scored span starts exactly at ``text``): the same tokens a training
record of this format gives (`gatera_lab.datamodules.instruction_data.tokenize_instruction`).
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.choice_items import EvalItem


def tokenize_choice_item(
    prompt: str,
    leads: Sequence[str],
    texts: Sequence[str],
    gold: int,
    tokenizer: PreTrainedTokenizerBase,
    task_index: int = 0,
    length_normalised: bool = False,
    row_id: str = "",
) -> EvalItem:
    """One item: candidate ``k`` is ``lead_k`` (conditioning only) followed by ``texts[k]`` (scored)."""
    if not texts or len(leads) != len(texts):
        raise ConfigError(
            f"{row_id or 'a choice item'}: needs one lead per choice text, got {len(leads)} and {len(texts)}"
        )
    if not 0 <= gold < len(texts):
        raise ConfigError(
            f"{row_id or 'a choice item'}: gold index {gold} is outside the {len(texts)} choices"
        )
    candidate_ids, score_starts = [], []
    for lead, text in zip(leads, texts, strict=True):
        lead_ids = list(tokenizer(lead, add_special_tokens=False)["input_ids"]) if lead else []
        text_ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not text_ids:
            raise ConfigError(f"{row_id or 'a choice item'}: a choice's scored text {text!r} has no tokens")
        candidate_ids.append([*lead_ids, *text_ids])
        score_starts.append(len(lead_ids))
    labels = tuple(f"choice{index + 1}" for index in range(len(texts)))
    return EvalItem(
        prompt_ids=list(tokenizer(prompt)["input_ids"]),
        candidate_ids=candidate_ids,
        score_starts=score_starts,
        labels=labels,
        label_set=labels,
        gold=gold,
        task_index=task_index,
        candidate_chars=tuple(len(text.lstrip()) for text in texts),  # as lm-eval: without the delimiter
        length_normalised=length_normalised,
        row_id=row_id,
    )
