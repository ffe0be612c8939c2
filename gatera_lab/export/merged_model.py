"""The merged model format: an ungated adapter folded into its base, a plain Hugging Face model folder.

``transformers.AutoModelForCausalLM.from_pretrained(folder)`` loads it without gatera-lab or PEFT:

``config.json``, ``generation_config.json`` (if the base has one), ``model.safetensors`` (or its shards)
    Written by the base model's own ``save_pretrained`` from `gatera_lab.export.merged_weights.merged_state_dict`:
    every adapted ``nn.Linear`` holds its merged weight (LoRA ``W0 + s B A``, DoRA ``m * V / ||V||_c``, HiRA
    ``W0 ⊙ (1 + B A)``, any other linear update read off its forward), and no adapter tensor is stored.
``gatera_merge.json``
    What was merged: ``format`` (``"gatera-merged-model"``), ``format_version`` (1), the fields of
    `SavedAdapter` (``method_name``, ``method_class_path``, ``method_hparams``, ``base_model``, ``fingerprint``)
    and those of `BaseModelRecord` (``base_model_name_or_path`` and, for an embedded base,
    ``gatera_lab_base_source`` and ``gatera_lab_base_note``). It also marks the folder as an export that
    ``--overwrite`` may replace.

The tokenizer files are written beside them by `gatera_lab.export.adapter_io.export_merged_model`.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.errors import ConfigError
from gatera_lab.export.base_model_record import BaseModelRecord
from gatera_lab.export.merged_weights import merged_state_dict, require_mergeable
from gatera_lab.export.saved_adapter import SavedAdapter

CONFIG_FILE = "gatera_merge.json"
FORMAT_NAME = "gatera-merged-model"
FORMAT_VERSION = 1
MODEL_FILES = (  # what save_pretrained writes (patterns), for `gatera_lab.export.export_folder`
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
)


def write_merged_model(folder: Path, model: nn.Module, method: AdapterMethod, base: BaseModelRecord) -> None:
    """Write the plain model with ``method``'s adapter merged, and ``gatera_merge.json``, into ``folder``."""
    require_mergeable(method)
    if not callable(getattr(model, "save_pretrained", None)):
        raise ConfigError(
            f"{type(model).__name__} is not a Hugging Face model (no save_pretrained); cannot merge"
        )
    state = merged_state_dict(model)
    saved = SavedAdapter.from_model(model, method, base.name_or_path)
    text = saved.to_json(method, {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}, base.fields())
    model.save_pretrained(folder, state_dict=state)
    (folder / CONFIG_FILE).write_text(text)
