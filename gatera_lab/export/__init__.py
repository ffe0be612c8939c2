"""Exporting trained adapters and loading them back.

- `export_adapter` / `load_adapter` (`adapter_io`): ungated LoRA, DoRA and HiRA in the Hugging Face PEFT
  format (`peft_format`), every other method in the gatera format (`gatera_format`, documented there:
  ``gatera_adapter.json`` + ``adapter.safetensors``);
- `load_checkpoint_adapter` (`checkpoint_adapter`): a GateraModule checkpoint onto its base model;
- `atomic_folder`: the all-or-nothing, fsynced folder writer both formats use; `export_folder`: which
  folders ``overwrite`` may replace (adapter exports holding nothing else).
"""

from gatera_lab.export.adapter_io import export_adapter, export_format, load_adapter
from gatera_lab.export.atomic_folder import atomic_folder
from gatera_lab.export.checkpoint_adapter import CheckpointAdapter, load_checkpoint_adapter
from gatera_lab.export.saved_adapter import SavedAdapter

__all__ = [
    "CheckpointAdapter",
    "SavedAdapter",
    "atomic_folder",
    "export_adapter",
    "export_format",
    "load_adapter",
    "load_checkpoint_adapter",
]
