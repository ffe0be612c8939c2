"""Commonsense records -> tokenised evaluation items (`gatera_lab.evaluation.EvalItem`).

Works on any LLM-Adapters record with a ``task`` field (from `CommonsenseExample.to_record`, a training
mixture's validation split, or a JSON file): the prompt is the training prompt, the candidate labels are
read from the instruction's final ``Answer format: a/b/c``, the gold label is ``answer``. A choice-text
record (`gatera_lab.datamodules.choice_text_format.choice_record`) gives an item whose candidates are
the choices' texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.choice_text_format import LENGTH_NORMALISED_TASKS, RecordFormat, example_record
from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES, TASKS, CommonsenseExample, DataFormatError
from gatera_lab.evaluation.choice_items import EvalItem, labels_from_instruction, tokenize_eval_item
from gatera_lab.evaluation.choice_text_items import tokenize_choice_item
from gatera_lab.evaluation.prompt_format import render_prompt

ANSWER_LABEL_SET = tuple(f"answer{index}" for index in range(1, 6))  # SIQA, ARC, OBQA (LLM-Adapters regex)


def label_set_of(task: str, labels: tuple[str, ...]) -> tuple[str, ...]:
    """The labels the generation regex of ``task`` accepts (the task's set, or the row's own labels)."""
    if task in TASKS:
        return TASKS[task].label_set
    return ANSWER_LABEL_SET if labels[0] == "answer1" else labels


def eval_items_from_records(
    records: Sequence[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    task_names: Sequence[str] = TASK_NAMES,
    max_prompt_length: int | None = None,
    origin: str = "records",
) -> list[EvalItem]:
    """One `EvalItem` per record; ``task_index`` indexes ``task_names``. Errors name ``origin`` and the row."""
    items = []
    for row, record in enumerate(records):
        where = f"{origin}, row {row}"
        task = record.get("task")
        if task not in task_names:
            raise DataFormatError(
                f"{where}: task {task!r} is not one of the evaluated tasks {list(task_names)}"
            )
        if "choice_texts" in record:
            items.append(
                tokenize_choice_item(
                    record["prompt"],
                    record["choice_leads"],
                    record["choice_texts"],
                    record["gold"],
                    tokenizer,
                    task_index=list(task_names).index(task),
                    length_normalised=task in LENGTH_NORMALISED_TASKS,
                    row_id=record.get("row_id", ""),
                )
            )
            continue
        labels = labels_from_instruction(record["instruction"], where)
        if record.get("answer") not in labels:
            raise DataFormatError(
                f"{where}: answer {record.get('answer')!r} is not one of the labels {list(labels)}"
            )
        items.append(
            tokenize_eval_item(
                render_prompt(record["instruction"], record.get("input", "")),
                labels,
                labels.index(record["answer"]),
                tokenizer,
                task_index=list(task_names).index(task),
                label_set=label_set_of(task, labels),
                max_prompt_length=max_prompt_length,
                row_id=record.get("row_id", ""),
            )
        )
    if not items:
        raise DataFormatError(f"{origin}: no records to evaluate")
    return items


def eval_items_from_examples(
    examples: Sequence[CommonsenseExample],
    tokenizer: PreTrainedTokenizerBase,
    task_names: Sequence[str] = TASK_NAMES,
    max_prompt_length: int | None = None,
    record_format: RecordFormat = "llm_adapters",
    row_ids: Sequence[str] | None = None,
) -> list[EvalItem]:
    """`eval_items_from_records` of the examples' records in ``record_format``."""
    row_ids = row_ids if row_ids is not None else [""] * len(examples)
    records = [
        example_record(example, record_format, row_id)
        for example, row_id in zip(examples, row_ids, strict=True)
    ]
    return eval_items_from_records(records, tokenizer, task_names, max_prompt_length, origin="examples")
