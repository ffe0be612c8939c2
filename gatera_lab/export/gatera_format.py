"""The gatera adapter format: any method, gated or not, a user's subclass included.

A folder with two files (and the base model's tokenizer files, which `export_adapter` writes beside them):

``gatera_adapter.json``
    ``format`` (always ``"gatera-adapter"``), ``format_version`` (an integer, currently 1), then the
    fields of `SavedAdapter`: ``method_name`` (registry name, e.g. ``"hira_gate"``), ``method_class_path``
    (e.g. ``"gatera_lab.methods.hira.HiRA"``), ``method_hparams`` (every ``__init__`` argument of the method, e.g.
    ``{"r": 32, "alpha": 64.0, "dropout": 0.0, "target_modules": [...], "gate": true, "gate_bias": 0.0, ...}``),
    ``base_model`` (the name or folder the adapter was trained on; an embedded base by its Hugging Face id,
    e.g. ``HuggingFaceTB/SmolLM2-135M-Instruct``) and ``fingerprint`` (the base model's ``architecture``,
    config sizes such as ``hidden_size`` and ``num_hidden_layers``, and the sorted ``adapted_modules``; see
    `gatera_lab.export.fingerprint`); then ``base_model_name_or_path`` (the same base, under the name PEFT and
    the Hub use) and, for an embedded base, ``gatera_lab_base_source`` (the embedded name gatera-lab loads)
    and ``gatera_lab_base_note`` (`gatera_lab.export.base_model_record`).
``adapter.safetensors``
    The adapter tensors only, keyed by their names in the adapted model's ``state_dict`` without any
    prefix, e.g. ``model.layers.0.self_attn.q_proj.lora_A`` (r, d_in), ``...q_proj.lora_B`` (d_out, r),
    ``...q_proj.lora_magnitude`` (d_out,) for DoRA, and for gated methods ``...q_proj.token_gate.weight``
    (1, d_in) and ``...q_proj.token_gate.bias`` (1,). The frozen base weights are not stored.

Loading rebuilds the method from ``method_class_path`` (or, when that cannot be imported, from the
registry name), checks the fingerprint against the base model at hand, injects the method and copies the
tensors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gatera_lab.adapters.adapter_method import AdapterMethod, adapter_state_dict
from gatera_lab.errors import ConfigError
from gatera_lab.export.base_model_record import BaseModelRecord
from gatera_lab.export.saved_adapter import SavedAdapter

CONFIG_FILE = "gatera_adapter.json"
WEIGHTS_FILE = "adapter.safetensors"
FORMAT_NAME = "gatera-adapter"
FORMAT_VERSION = 1


def write_gatera_adapter(
    folder: Path, model: nn.Module, method: AdapterMethod, base: BaseModelRecord
) -> None:
    """Write ``gatera_adapter.json`` and ``adapter.safetensors`` for ``method`` as applied to ``model``."""
    saved = SavedAdapter.from_model(model, method, base.name_or_path)
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
    (folder / CONFIG_FILE).write_text(saved.to_json(method, header, base.fields()))
    tensors = {key: value.contiguous() for key, value in adapter_state_dict(model).items()}
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})


def read_gatera_config(folder: Path) -> SavedAdapter:
    """Parse and validate ``folder/gatera_adapter.json``."""
    path = folder / CONFIG_FILE
    data: Any = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT_NAME:
        raise ConfigError(f"{path}: field 'format' must be {FORMAT_NAME!r}, got {data.get('format')!r}")
    version = data.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"{path}: field 'format_version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"{path}: field 'format_version'={version} is newer than this gatera-lab reads ({FORMAT_VERSION})"
        )
    return SavedAdapter.from_dict(data, str(path))


def read_gatera_adapter(folder: Path, model: nn.Module) -> AdapterMethod:
    """Inject the adapter saved in ``folder`` into the fresh base ``model`` and return its method."""
    saved = read_gatera_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"{folder}: file {WEIGHTS_FILE!r} is missing (it holds the adapter tensors)")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise ConfigError(f"{weights}: not a readable safetensors file ({error})") from error
    return saved.attach(model, tensors, str(folder / CONFIG_FILE), str(weights))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from error
