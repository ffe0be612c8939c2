"""Exporting trained adapters and loading them back.

- `export_adapter` / `load_adapter` (`adapter_io`): ungated LoRA, DoRA and HiRA in the Hugging Face PEFT
  format (`peft_format`), every other method in the gatera format (`gatera_format`, documented there:
  ``gatera_adapter.json`` + ``adapter.safetensors``), with the base model's tokenizer beside them;
- `export_merged_model` (`adapter_io`): an ungated adapter merged into its base (`merged_weights`), a plain
  Hugging Face model folder (`merged_model`);
- `exported_base_model` / `BaseModelRecord` (`base_model_record`): the base an export names (an embedded model
  by its Hugging Face id, with the embedded copy noted for gatera-lab);
- `load_checkpoint_adapter` (`checkpoint_adapter`): a GateraModule checkpoint onto its base model, the one
  checkpoint-to-model loader; `load_for_inference`: that (or a base alone) with its tokenizer, in eval mode;
- `atomic_folder`: the all-or-nothing, fsynced folder writer both formats use; `export_folder`: which
  folders ``overwrite`` may replace (exports holding nothing else).
"""

from gatera_lab.export.adapter_io import (
    export_adapter,
    export_format,
    export_merged_model,
    exported_base_model,
    load_adapter,
)
from gatera_lab.export.atomic_folder import atomic_folder
from gatera_lab.export.base_model_record import BaseModelRecord
from gatera_lab.export.checkpoint_adapter import (
    CheckpointAdapter,
    InferenceModel,
    load_checkpoint_adapter,
    load_for_inference,
)
from gatera_lab.export.saved_adapter import SavedAdapter

__all__ = [
    "BaseModelRecord",
    "CheckpointAdapter",
    "InferenceModel",
    "SavedAdapter",
    "atomic_folder",
    "export_adapter",
    "export_format",
    "export_merged_model",
    "exported_base_model",
    "load_adapter",
    "load_checkpoint_adapter",
    "load_for_inference",
]
