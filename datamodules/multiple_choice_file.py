"""A user's multiple-choice test set, as evaluation items scored by each choice's likelihood.

Each row is ``{"question": str, "choices": [str, ...], "gold": int}`` (or ``"prompt": str`` instead of
the question) with an optional ``task`` (default: the file's stem). The prompt is the `PromptTemplate`
applied to the question, or the ``prompt`` field as it is (as for training records); choice ``k`` is
scored as the text ``" " + choices[k]`` after it (`gatera_lab.evaluation.choice_text_items.tokenize_choice_item`), so the prediction is the choice with the
highest log-likelihood (per character when ``length_normalised``). Row ids are ``task/index``, the index
counting the rows of that task from 0 in file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.instruction_records import text_field
from gatera_lab.datamodules.prompt_templates import PromptTemplate
from gatera_lab.datamodules.record_files import json_type, read_record_file
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.choice_items import EvalItem
from gatera_lab.evaluation.choice_text_items import tokenize_choice_item


def _choices(record: dict[str, Any], place: str) -> list[str]:
    choices = record.get("choices")
    if "choices" not in record:
        raise ConfigError(f"{place}: field 'choices' is missing")
    if not isinstance(choices, list) or not all(isinstance(choice, str) for choice in choices):
        raise ConfigError(f"{place}: field 'choices' must be a list of strings, got {json_type(choices)}")
    if len(choices) < 2:
        raise ConfigError(f"{place}: field 'choices' needs at least 2 choices, got {len(choices)}")
    return choices


def _gold(record: dict[str, Any], place: str, choices: int) -> int:
    if "gold" not in record:
        raise ConfigError(f"{place}: field 'gold' is missing")
    gold = record["gold"]
    if isinstance(gold, bool) or not isinstance(gold, int):
        raise ConfigError(f"{place}: field 'gold' must be an integer index, got {json_type(gold)}")
    if not 0 <= gold < choices:
        raise ConfigError(
            f"{place}: field 'gold' is {gold}, outside the {choices} choices (0 to {choices - 1})"
        )
    return gold


def read_multiple_choice_file(
    path: str | Path,
    template: PromptTemplate,
    tokenizer: PreTrainedTokenizerBase,
    length_normalised: bool = True,
) -> tuple[list[EvalItem], tuple[str, ...]]:
    """The evaluation items of every row, and the task names in order of first appearance.

    ``task_index`` of an item indexes the returned task names.
    """
    file_records = read_record_file(path, what="test file")
    default_task = Path(path).stem or Path(path).name
    rows = []
    for record, place in zip(file_records.records, file_records.places, strict=True):
        if "question" in record:
            prompt = template.prompt(text_field(record, "question", place), "", tokenizer)
        elif "prompt" in record:
            prompt = text_field(record, "prompt", place)
        else:
            raise ConfigError(f"{place}: field 'question' (or 'prompt') is missing")
        choices = _choices(record, place)
        gold = _gold(record, place, len(choices))
        task = text_field(record, "task", place, required=False) or default_task
        rows.append((prompt, choices, gold, task))
    task_names = tuple(dict.fromkeys(task for *_, task in rows))
    seen = dict.fromkeys(task_names, 0)
    items = []
    for prompt, choices, gold, task in rows:
        row_id = f"{task}/{seen[task]}"
        seen[task] += 1
        items.append(
            tokenize_choice_item(
                prompt,
                leads=[""] * len(choices),
                texts=[" " + choice for choice in choices],
                gold=gold,
                tokenizer=tokenizer,
                task_index=task_names.index(task),
                length_normalised=length_normalised,
                row_id=row_id,
            )
        )
    return items, task_names
