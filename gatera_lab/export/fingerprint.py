"""`base_model_fingerprint`: what identifies the base model an adapter was trained on.

Adapter tensors are only meaningful on the base model they were trained with. Checkpoints and exported
adapters store this fingerprint, and loading compares it with the model at hand. It is structural (the
architecture and the sizes that decide every adapter tensor's shape, plus the names of the adapted modules),
cheap to compute and independent of dtype and device, so it does not catch two checkpoints of the same
architecture with different weights. Module names are taken as a plain model names them: the prefixes that
wrappers insert (FSDP's ``_fsdp_wrapped_module.``, activation checkpointing's ``_checkpoint_wrapped_module.``,
``torch.compile``'s ``_orig_mod.``) are removed, and FSDP2's ``FSDP<class>`` is its class, so a checkpoint
written under FSDP loads on one device.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.distributed.fsdp import FSDPModule
from torch.distributed.fsdp._common_utils import clean_tensor_name

from gatera_lab.adapters.adapter_method import adapter_layers

CONFIG_FIELDS = (
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


def base_model_fingerprint(model: nn.Module) -> dict[str, Any]:
    """The architecture, the sizes from ``model.config`` and the adapted module names of ``model``.

    Args:
        model: a (Hugging Face) model, with or without adapters injected.

    Returns:
        A JSON-serialisable dict: ``architecture`` (the model class name), every field of `CONFIG_FIELDS`
        that ``model.config`` has, and ``adapted_modules`` (sorted full names of its `AdapterLinear` layers;
        empty before an adapter is applied).
    """
    fingerprint: dict[str, Any] = {"architecture": plain_class(model).__name__}
    config = getattr(model, "config", None)
    for field in CONFIG_FIELDS:
        value = getattr(config, field, None)
        if value is not None:
            fingerprint[field] = value
    fingerprint["adapted_modules"] = sorted(plain_module_name(name) for name, _ in adapter_layers(model))
    return fingerprint


def plain_class(model: nn.Module) -> type:
    """``model``'s class, or under FSDP2 the class it had before ``fully_shard`` (which makes a subclass
    ``FSDP<name>`` of `FSDPModule` and the original)."""
    if not isinstance(model, FSDPModule):
        return type(model)
    return next(cls for cls in type(model).__mro__[1:] if not issubclass(cls, FSDPModule))


def plain_module_name(name: str) -> str:
    """``name`` without the prefixes that FSDP, activation checkpointing and ``torch.compile`` insert."""
    return clean_tensor_name(name).replace("_orig_mod.", "")


def describe_difference(saved: dict[str, Any], current: dict[str, Any]) -> str:
    """A short human-readable list of the fields where two fingerprints differ."""
    parts = []
    for field in dict.fromkeys([*saved, *current]):
        if saved.get(field) == current.get(field):
            continue
        if field == "adapted_modules":
            saved_set, current_set = set(saved.get(field) or []), set(current.get(field) or [])
            parts.append(
                f"adapted_modules: {len(saved_set)} saved vs {len(current_set)} here "
                f"(only saved: {sorted(saved_set - current_set)[:3]}, only here: {sorted(current_set - saved_set)[:3]})"
            )
        else:
            parts.append(f"{field}: saved {saved.get(field)!r}, here {current.get(field)!r}")
    return "; ".join(parts)
