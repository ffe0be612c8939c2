"""Instruction records in the LLM-Adapters format, tokenised with a prompt/response mask.

A record is ``{"instruction", "input", "output", "answer"}``, its prompt the Alpaca template of
`gatera_lab.evaluation.prompt_format`, or ``{"prompt", "output"}`` with the prompt's text as it is (the
choice-text format, `gatera_lab.datamodules.choice_text_format`). The model sees ``prompt + output + eos`` (no
``eos`` when the record says ``"append_eos": false``); ``response_mask`` marks the response tokens: the loss
on response tokens only and the prefill/decode gate diagnostics both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.json_text_file import read_json_file
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.prompt_format import render_prompt

REQUIRED_FIELDS = ("instruction", "output")


def read_instruction_file(path: str | Path) -> list[dict[str, str]]:
    """Read a JSON list of LLM-Adapters records, with errors that name the file, the row and the field.

    The file may be UTF-8 (with or without a byte-order mark) or UTF-16/UTF-32 (see `read_json_file`).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"instruction file {str(path)!r} does not exist")
    records = read_json_file(path)
    if not isinstance(records, list):
        raise ConfigError(f"{path}: expected a JSON list of records, got {_json_type(records)}")
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise ConfigError(f"{path}, row {row}: expected an object, got {_json_type(record)}")
        for field in REQUIRED_FIELDS:
            if field not in record:
                raise ConfigError(f"{path}, row {row}: field {field!r} is missing")
        for field in (*REQUIRED_FIELDS, "input"):
            if field in record and not isinstance(record[field], str):
                raise ConfigError(
                    f"{path}, row {row}: field {field!r} must be a string, got {_json_type(record[field])}"
                )
    if not records:
        raise ConfigError(f"{path}: the file holds no records")
    return records


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (``object``, ``list``, ``number``, ...)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


@dataclass(frozen=True)
class TokenizedExample:
    """One training sequence: token ids, per token whether it belongs to the response, and what was cut.

    ``prompt_cut`` and ``response_cut`` count the tokens removed to fit ``max_length`` (0 when it fit).
    """

    input_ids: list[int]
    response_mask: list[bool]
    prompt_cut: int = 0
    response_cut: int = 0


def record_prompt(record: dict[str, Any]) -> str:
    """The prompt text of a record: its ``prompt`` as it is, else the Alpaca template of its instruction."""
    if "prompt" in record:
        return record["prompt"]
    return render_prompt(record["instruction"], record.get("input", ""))


def tokenize_instruction(
    record: dict[str, Any], tokenizer: PreTrainedTokenizerBase, max_length: int | None
) -> TokenizedExample:
    """``prompt`` and ``output + eos`` tokenised separately (so the boundary is exact), then concatenated.

    Sequences longer than ``max_length`` lose tokens from the left of the prompt, so the response survives;
    only a response longer than ``max_length`` itself loses the whole prompt and its own end. The example
    records both counts (`gatera_lab.datamodules.truncation_report` sums them per split).
    """
    prompt_ids = tokenizer(record_prompt(record))["input_ids"]
    response_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None and record.get("append_eos", True):
        response_ids = [*response_ids, tokenizer.eos_token_id]
    overflow = len(prompt_ids) + len(response_ids) - max_length if max_length is not None else 0
    prompt_cut = response_cut = 0
    if overflow > 0:
        prompt_cut = min(overflow, len(prompt_ids))
        response_cut = overflow - prompt_cut
        prompt_ids = prompt_ids[prompt_cut:]
        response_ids = response_ids[: len(response_ids) - response_cut]
    return TokenizedExample(
        input_ids=[*prompt_ids, *response_ids],
        response_mask=[False] * len(prompt_ids) + [True] * len(response_ids),
        prompt_cut=prompt_cut,
        response_cut=response_cut,
    )


class InstructionCollator:
    """Right-pads a list of `TokenizedExample` into a batch.

    Returns ``input_ids`` (B, T), ``attention_mask`` (B, T) with 1 on real tokens, and ``response_mask``
    (B, T) with 1 on response tokens.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[TokenizedExample]) -> dict[str, Tensor]:
        length = max(len(example.input_ids) for example in examples)
        input_ids = torch.full((len(examples), length), self.pad_token_id, dtype=torch.long)  # (B, T)
        attention_mask = torch.zeros((len(examples), length), dtype=torch.long)  # (B, T)
        response_mask = torch.zeros((len(examples), length), dtype=torch.long)  # (B, T)
        for row, example in enumerate(examples):
            size = len(example.input_ids)
            input_ids[row, :size] = torch.tensor(example.input_ids)
            attention_mask[row, :size] = 1
            response_mask[row, :size] = torch.tensor(example.response_mask, dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}
