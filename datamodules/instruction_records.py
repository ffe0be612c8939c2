"""A user's instruction records, checked and turned into ``{"prompt", "output", "append_eos"}`` records.

The field names are options (`InstructionFields`); the prompt comes from a `PromptTemplate`. The records
returned are what `gatera_lab.datamodules.instruction_data.tokenize_instruction` tokenises: the prompt as
it is, then ``output`` (ended by the template's end of turn for ``chat``, else by eos unless the record
says ``"append_eos": false``), with the loss mask on the response only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.prompt_templates import PromptTemplate
from gatera_lab.datamodules.record_files import FileRecords, json_type
from gatera_lab.errors import ConfigError


@dataclass(frozen=True)
class InstructionFields:
    """Which field of a record holds the instruction, the (optional) input and the response."""

    instruction: str = "instruction"
    input: str = "input"
    output: str = "output"


def text_field(record: dict[str, Any], field: str, place: str, required: bool = True) -> str:
    """``record[field]`` as a string; "" for an optional field that is absent or null."""
    if field not in record or (record[field] is None and not required):
        if required:
            raise ConfigError(f"{place}: field {field!r} is missing")
        return ""
    value = record[field]
    if not isinstance(value, str):
        raise ConfigError(f"{place}: field {field!r} must be a string, got {json_type(value)}")
    return value


def prompt_records(
    file_records: FileRecords,
    fields: InstructionFields,
    template: PromptTemplate,
    tokenizer: PreTrainedTokenizerBase,
) -> list[dict[str, Any]]:
    """Every record as ``{"prompt", "output", "append_eos"}``; a bad field is a `ConfigError` at its place.

    A record with a ``prompt`` field needs no instruction: that field is its whole prompt, as it is.
    """
    response_end = template.response_end(tokenizer)
    records = []
    for record, place in zip(file_records.records, file_records.places, strict=True):
        if "prompt" in record and fields.instruction != "prompt":
            prompt = text_field(record, "prompt", place)
        else:
            instruction = text_field(record, fields.instruction, place)
            input_text = text_field(record, fields.input, place, required=False)
            prompt = template.prompt(instruction, input_text, tokenizer)
        output = text_field(record, fields.output, place)
        append_eos = record.get("append_eos", True)
        if response_end is not None and append_eos:
            output, append_eos = output + response_end, False  # the end of turn replaces eos
        records.append({"prompt": prompt, "output": output, "append_eos": append_eos})
    return records
