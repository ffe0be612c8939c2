"""The Hugging Face PEFT format, for the ungated built-in methods LoRA, DoRA and HiRA.

A folder that ``peft.PeftModel.from_pretrained(base, folder)`` loads (checked against PEFT 0.21), with the
base model's tokenizer files beside it (written by `gatera_lab.export.adapter_io.export_adapter`):

``adapter_config.json``
    A PEFT config: ``peft_type`` ``"LORA"`` (with ``use_dora`` for DoRA) or ``"HIRA"``, ``r``,
    ``lora_alpha`` / ``lora_dropout`` or ``hira_dropout``, ``target_modules``, ``task_type`` ``"CAUSAL_LM"``
    and ``base_model_name_or_path`` (an embedded base is named by its Hugging Face id, e.g.
    ``HuggingFaceTB/SmolLM2-135M-Instruct``). Written here without importing peft.
``adapter_model.safetensors``
    The adapter tensors under PEFT's names: ``base_model.model.<module>.`` followed by ``lora_A.weight``,
    ``lora_B.weight`` and, for DoRA, ``lora_magnitude_vector``; for HiRA ``hira_A`` and ``hira_B``.
``gatera_lab_base.json`` (only for a base that is an embedded model)
    ``base_model_name_or_path`` (the Hugging Face id, as in ``adapter_config.json``), ``gatera_lab_base_source``
    (the embedded name gatera-lab loads) and ``gatera_lab_base_note`` (`gatera_lab.export.base_model_record`);
    a file of its own because PEFT warns about fields it does not know in ``adapter_config.json``.

The math agrees with PEFT's (``s = lora_alpha / r``; DoRA's detached column norm; HiRA without a scale),
which tests/test_peft_parity.py checks. Gated methods and other classes have no PEFT equivalent.
Reading accepts such folders written by PEFT too, as long as they use no option gatera-lab lacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gatera_lab.adapters.adapter_method import AdapterMethod, adapter_layers, adapter_state_dict
from gatera_lab.adapters.target_matching import matches_target
from gatera_lab.errors import ConfigError
from gatera_lab.export.adapter_tensors import load_adapter_tensors
from gatera_lab.export.base_model_record import BaseModelRecord
from gatera_lab.registry import build_method, get_entry

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
BASE_SOURCE_FILE = "gatera_lab_base.json"
KEY_PREFIX = "base_model.model."

# registry name -> our parameter name -> PEFT's tensor name (after "base_model.model.<module>.")
PEFT_TENSOR_NAMES: dict[str, dict[str, str]] = {
    "lora": {"lora_A": "lora_A.weight", "lora_B": "lora_B.weight"},
    "dora": {
        "lora_A": "lora_A.weight",
        "lora_B": "lora_B.weight",
        "lora_magnitude": "lora_magnitude_vector",
    },
    "hira": {"lora_A": "hira_A", "lora_B": "hira_B"},
}

# PEFT options with no gatera-lab equivalent: reading refuses a config that sets any of them
UNSUPPORTED_OPTIONS = (
    "use_rslora",
    "fan_in_fan_out",
    "lora_bias",
    "rank_pattern",
    "alpha_pattern",
    "modules_to_save",
    "layers_to_transform",
    "exclude_modules",
    "layer_replication",
    "trainable_token_indices",
    "target_parameters",
    "use_qalora",
    "alora_invocation_tokens",
)


def peft_method_name(method: AdapterMethod) -> str | None:
    """``lora``, ``dora`` or ``hira`` if PEFT can represent ``method`` exactly, else None."""
    name = method.registry_name
    if method.gate or name not in PEFT_TENSOR_NAMES:
        return None
    return name if get_entry(name).method_class is type(method) else None


def write_peft_adapter(folder: Path, model: nn.Module, method: AdapterMethod, base: BaseModelRecord) -> None:
    """Write ``adapter_config.json``, ``adapter_model.safetensors`` (and ``gatera_lab_base.json``) for ``method``."""
    name = peft_method_name(method)
    if name is None:
        raise ConfigError(
            f"method {method.name!r} ({method.class_path()}) has no Hugging Face PEFT equivalent"
        )
    config = peft_config(name, method, peft_target_modules(model, method), base.name_or_path)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    if base.source is not None:
        (folder / BASE_SOURCE_FILE).write_text(json.dumps(base.fields(), indent=2) + "\n")
    tensors = {}
    for key, value in adapter_state_dict(model).items():
        module, _, parameter = key.rpartition(".")
        tensors[f"{KEY_PREFIX}{module}.{PEFT_TENSOR_NAMES[name][parameter]}"] = value.contiguous()
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})


def peft_config(name: str, method: AdapterMethod, target_modules: Any, base_model: str) -> dict[str, Any]:
    """The ``adapter_config.json`` contents for the ungated method ``name``."""
    common = {
        "base_model_name_or_path": base_model,
        "task_type": "CAUSAL_LM",
        "inference_mode": True,
        "r": method.r,
        "target_modules": target_modules,
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "rank_pattern": {},
        "layers_to_transform": None,
        "layers_pattern": None,
    }
    if name == "hira":
        return {"peft_type": "HIRA", **common, "hira_dropout": method.dropout, "init_weights": True}
    alpha = int(method.alpha) if float(method.alpha).is_integer() else method.alpha
    return {
        "peft_type": "LORA",
        **common,
        "lora_alpha": alpha,
        "lora_dropout": method.dropout,
        "use_dora": name == "dora",
        "use_rslora": False,
        "bias": "none",
        "alpha_pattern": {},
        "init_lora_weights": True,
    }


def peft_target_modules(model: nn.Module, method: AdapterMethod) -> str | list[str]:
    """``method.target_modules`` if PEFT's matching would select exactly the adapted modules, else their names.

    PEFT matches every module by name, gatera-lab only ``nn.Linear`` ones, so a pattern can mean more there.
    """
    adapted = [name for name, _ in adapter_layers(model)]
    inner = tuple(f"{name}." for name in adapted)
    candidates = [name for name, _ in model.named_modules() if name and not name.startswith(inner)]
    if {name for name in candidates if matches_target(name, method.target_modules)} == set(adapted):
        return method.target_modules
    return sorted(adapted)


def read_peft_adapter(folder: Path, model: nn.Module) -> AdapterMethod:
    """Inject the PEFT adapter saved in ``folder`` into the fresh base ``model`` and return its method."""
    config_path = folder / CONFIG_FILE
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{config_path}: not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{config_path}: expected a JSON object, got {type(config).__name__}")
    name = method_from_peft_config(config, config_path)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ConfigError(f"{folder}: file {WEIGHTS_FILE!r} is missing (only safetensors weights are read)")
    try:
        peft_tensors = load_file(str(weights))
    except (SafetensorError, OSError) as error:
        raise ConfigError(f"{weights}: not a readable safetensors file ({error})") from error
    method = build_method(
        name,
        r=config["r"],
        alpha=config.get("lora_alpha", 8),
        dropout=config.get("lora_dropout", config.get("hira_dropout", 0.0)),
        target_modules=config["target_modules"],
    )
    method.apply(model)
    load_adapter_tensors(model, from_peft_names(name, peft_tensors), str(weights))
    return method


def method_from_peft_config(config: dict[str, Any], path: Path) -> str:
    """The registry name for a PEFT config; `ConfigError` naming the field PEFT sets and gatera-lab lacks."""
    peft_type = config.get("peft_type")
    if peft_type not in ("LORA", "HIRA"):
        raise ConfigError(f"{path}: field 'peft_type'={peft_type!r} is not supported (LORA or HIRA)")
    for field in ("r", "target_modules"):
        if not config.get(field):
            raise ConfigError(f"{path}: required field {field!r} is missing or empty")
    for field in UNSUPPORTED_OPTIONS:
        if config.get(field):
            raise ConfigError(f"{path}: field {field!r}={config[field]!r} has no gatera-lab equivalent")
    if config.get("bias", "none") not in (None, "none"):
        raise ConfigError(
            f"{path}: field 'bias'={config['bias']!r} has no gatera-lab equivalent (only 'none')"
        )
    if peft_type == "HIRA":
        return "hira"
    return "dora" if config.get("use_dora") else "lora"


def from_peft_names(name: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """PEFT tensor names -> `adapter_state_dict` names; unknown names are kept so the loader reports them."""
    ours = {peft: our for our, peft in PEFT_TENSOR_NAMES[name].items()}
    renamed = {}
    for key, value in tensors.items():
        module_and_name = key.removeprefix(KEY_PREFIX)
        for peft_name, our_name in ours.items():
            if module_and_name.endswith("." + peft_name):
                module_and_name = module_and_name[: -len(peft_name)] + our_name
                break
        renamed[module_and_name] = value
    return renamed
