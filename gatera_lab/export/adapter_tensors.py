"""Copying saved adapter tensors into a model whose adapter was just injected, with exact key and shape checks."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gatera_lab.adapters.adapter_method import adapter_layers
from gatera_lab.errors import CheckpointMismatchError


@torch.no_grad()
def load_adapter_tensors(model: nn.Module, tensors: dict[str, Tensor], source: str) -> None:
    """Copy ``tensors`` (keyed like `adapter_state_dict`) into the adapter parameters of ``model``.

    Every adapter parameter must be present with the same shape, and nothing else; values are cast to the
    parameter's dtype and device.

    Raises:
        CheckpointMismatchError: missing, unexpected or differently shaped tensors (names ``source``).
    """
    parameters = {
        f"{layer_name}.{name}": parameter
        for layer_name, layer in adapter_layers(model)
        for name, parameter in layer.named_adapter_parameters()
    }
    missing = sorted(set(parameters) - set(tensors))
    unexpected = sorted(set(tensors) - set(parameters))
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{source}: the adapter tensors do not fit this model ({len(missing)} missing, e.g. {missing[:3]}; "
            f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}); was it saved for another method or base model?"
        )
    for key, parameter in parameters.items():
        value = tensors[key]
        if tuple(value.shape) != tuple(parameter.shape):
            raise CheckpointMismatchError(
                f"{source}: tensor {key!r} has shape {tuple(value.shape)}, but this model's adapter expects "
                f"{tuple(parameter.shape)}; was it saved for another base model or rank?"
            )
        parameter.copy_(value)
