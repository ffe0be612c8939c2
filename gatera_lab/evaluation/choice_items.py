"""Multiple-choice evaluation items and their collate function (left padding, for scoring and generation).

An item is a prompt and, per candidate label, the response the model would write
(``"the correct answer is answer2"``), tokenised as in training: ``tokenizer(prompt)`` and
``tokenizer(response, add_special_tokens=False)`` separately. ``score_start`` marks the first token of the
label inside the response (after the tokens of the shared prefix ``"the correct answer is"``); scoring
sums the log-probabilities of the tokens from there on.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.prompt_format import RESPONSE_PREFIX

_ANSWER_FORMAT = re.compile(r"Answer format: ([A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)+)\s*$")


@dataclass(frozen=True)
class EvalItem:
    """One tokenised multiple-choice question."""

    prompt_ids: list[int]
    candidate_ids: list[list[int]]  # response tokens per candidate label
    score_starts: list[int]  # first label token inside each candidate's response tokens
    labels: tuple[str, ...]  # candidate labels, e.g. ("answer1", "answer2", "answer3")
    label_set: tuple[str, ...]  # labels the generation regex accepts (task-wide, may be a superset)
    gold: int
    task_index: int
    candidate_chars: tuple[int, ...] = ()  # characters of each scored text (acc_norm); () for labels
    length_normalised: bool = False  # predict by score per character (acc_norm) instead of score (acc)
    row_id: str = ""  # the row's identity in its test set ("piqa/17"), for row-by-row comparisons


def is_eval_batch(batch: dict[str, Tensor]) -> bool:
    """Multiple-choice evaluation batches (from `EvalCollator`) carry the candidates' token ids."""
    return "candidate_ids" in batch


def labels_from_instruction(instruction: str, origin: str = "instruction") -> tuple[str, ...]:
    """The labels of an LLM-Adapters instruction, read from its final ``Answer format: a/b/c``."""
    match = _ANSWER_FORMAT.search(instruction)
    if match is None:
        raise ConfigError(f"{origin}: no 'Answer format: label1/label2...' at the end of the instruction")
    return tuple(match[1].split("/"))


def _common_prefix(first: list[int], second: list[int]) -> int:
    size = 0
    while size < min(len(first), len(second)) and first[size] == second[size]:
        size += 1
    return size


def tokenize_eval_item(
    prompt: str,
    labels: Sequence[str],
    gold: int,
    tokenizer: PreTrainedTokenizerBase,
    task_index: int = 0,
    label_set: Sequence[str] | None = None,
    response_prefix: str = RESPONSE_PREFIX,
    max_prompt_length: int | None = None,
    row_id: str = "",
) -> EvalItem:
    """Tokenise ``prompt`` and the response ``f"{response_prefix} {label}"`` of every label.

    Prompts longer than ``max_prompt_length`` tokens lose tokens from the left (as in training).
    """
    if not labels:
        raise ConfigError("an evaluation item needs at least one candidate label")
    if not 0 <= gold < len(labels):
        raise ConfigError(f"gold index {gold} is outside the {len(labels)} labels {list(labels)}")
    prompt_ids = list(tokenizer(prompt)["input_ids"])
    if max_prompt_length is not None and len(prompt_ids) > max_prompt_length:
        prompt_ids = prompt_ids[len(prompt_ids) - max_prompt_length :]
    prefix_ids = (
        list(tokenizer(response_prefix, add_special_tokens=False)["input_ids"]) if response_prefix else []
    )
    candidate_ids, score_starts = [], []
    for label in labels:
        response = f"{response_prefix} {label}" if response_prefix else label
        ids = list(tokenizer(response, add_special_tokens=False)["input_ids"])
        start = min(_common_prefix(ids, prefix_ids), len(ids) - 1)  # at least one scored token
        candidate_ids.append(ids)
        score_starts.append(start)
    return EvalItem(
        prompt_ids=prompt_ids,
        candidate_ids=candidate_ids,
        score_starts=score_starts,
        labels=tuple(labels),
        label_set=tuple(label_set) if label_set is not None else tuple(labels),
        gold=gold,
        task_index=task_index,
        row_id=row_id,
    )


class EvalCollator:
    """Pads a list of `EvalItem` into one batch.

    Returns ``input_ids`` and ``attention_mask`` (B, Tp), prompts padded on the left (so generation and
    scoring continue right after the last prompt token); ``candidate_ids``, ``candidate_mask`` (real
    tokens) and ``score_mask`` (scored tokens) (B, K, Tc), padded on the right, K the most candidates in
    the batch; ``candidate_chars`` (B, K) characters of each scored text (1 where unknown or absent);
    ``gold``, ``task_index``, ``length_normalised`` and ``choice_text`` (B,); ``labels``, ``label_sets`` and ``row_ids``
    as lists.
    """

    def __init__(self, pad_token_id: int) -> None:
        """
        Args:
            pad_token_id: id written into padding positions (masked out everywhere).
        """
        self.pad_token_id = pad_token_id

    def __call__(self, items: Sequence[EvalItem]) -> dict[str, Tensor | list[tuple[str, ...]]]:
        batch, prompt_length = len(items), max(len(item.prompt_ids) for item in items)
        choices = max(len(item.candidate_ids) for item in items)
        response_length = max(len(ids) for item in items for ids in item.candidate_ids)
        input_ids = torch.full((batch, prompt_length), self.pad_token_id, dtype=torch.long)  # (B, Tp)
        attention_mask = torch.zeros((batch, prompt_length), dtype=torch.long)  # (B, Tp)
        candidate_ids = torch.full(
            (batch, choices, response_length), self.pad_token_id, dtype=torch.long
        )  # (B, K, Tc)
        candidate_mask = torch.zeros((batch, choices, response_length), dtype=torch.long)  # (B, K, Tc)
        score_mask = torch.zeros((batch, choices, response_length), dtype=torch.long)  # (B, K, Tc)
        candidate_chars = torch.ones((batch, choices), dtype=torch.float)  # (B, K)
        for row, item in enumerate(items):
            size = len(item.prompt_ids)
            input_ids[row, prompt_length - size :] = torch.tensor(item.prompt_ids)
            attention_mask[row, prompt_length - size :] = 1
            for choice, (ids, start) in enumerate(zip(item.candidate_ids, item.score_starts, strict=True)):
                candidate_ids[row, choice, : len(ids)] = torch.tensor(ids)
                candidate_mask[row, choice, : len(ids)] = 1
                score_mask[row, choice, start : len(ids)] = 1
            if item.candidate_chars:
                candidate_chars[row, : len(item.candidate_chars)] = torch.tensor(item.candidate_chars).clamp(
                    min=1
                )
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "candidate_ids": candidate_ids,
            "candidate_mask": candidate_mask,
            "score_mask": score_mask,
            "candidate_chars": candidate_chars,
            "length_normalised": torch.tensor([item.length_normalised for item in items], dtype=torch.bool),
            "choice_text": torch.tensor([bool(item.candidate_chars) for item in items], dtype=torch.bool),
            "gold": torch.tensor([item.gold for item in items], dtype=torch.long),  # (B,)
            "task_index": torch.tensor([item.task_index for item in items], dtype=torch.long),  # (B,)
            "labels": [item.labels for item in items],
            "label_sets": [item.label_set for item in items],
            "row_ids": [item.row_id for item in items],
        }
