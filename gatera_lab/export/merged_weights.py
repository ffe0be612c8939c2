"""Folding ungated adapters into their base weights: the state dict of a plain model that computes the same.

An ungated layer computes ``y = W0 x + b + DeltaW(x)``; where ``DeltaW`` is linear in ``x`` one weight ``W``
does it: LoRA ``W = W0 + s B A``, DoRA ``W = m * V / ||V||_c`` with ``V = W0 + s B A``, HiRA
``W = W0 ⊙ (1 + B A)``. `merged_linear_weight` takes ``W`` from the method's own `merged_weight` and checks it
against the layer's forward; where the method defines none, or its weight disagrees with its forward (a
subclass that changed `delta` but not `delta_weight`), ``W`` is read off the forward itself on the identity:
row ``i`` of ``forward(I) - b`` is column ``i`` of ``W``. Any method, a user's included, is merged this way
where its update is linear; one whose update is not is refused. Everything runs on a float64 copy of the
layer, then ``W`` is cast to the base weight's dtype.

A gated layer ``W0 x + b + g(x) DeltaW(x)`` has a per-token gate, which no single weight can hold: refused.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.adapter_method import AdapterMethod, adapter_layers
from gatera_lab.errors import ConfigError, MergeError

PROBE_TOKENS = 16  # random inputs the merged weight is checked on
RELATIVE_TOLERANCE = 1e-8  # in float64, relative to the largest output


def require_mergeable(method: AdapterMethod) -> None:
    """Refuse a gated method: its per-token gate cannot be folded into one weight."""
    if method.gate:
        raise ConfigError(
            f"method {method.name!r} is gated: its update g(x) * DeltaW(x) depends on each token's gate, so it "
            "cannot be merged into the base weights; export the adapter without --merge"
        )


@torch.no_grad()
def merged_linear_weight(layer: AdapterLinear, name: str) -> Tensor:
    """The weight ``W`` (d_out, d_in) with ``W x + b`` equal to what the ungated ``layer`` computes.

    Raises:
        ConfigError: ``layer`` is gated, or its update is not linear in ``x`` (names the layer and method).
    """
    require_mergeable(layer.method)
    exact = copy.deepcopy(layer).to(torch.float64).eval()  # dropout off; the layer itself is untouched
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(PROBE_TOKENS, layer.in_features, generator=generator, dtype=torch.float64)
    probe = probe.to(exact.base_layer.weight.device)  # (k, d_in)
    expected = exact(probe)  # (k, d_out)
    bias = exact.base_layer.bias
    for candidate in (method_merged_weight(exact), forward_on_identity(exact)):
        if candidate is not None and computes(candidate, bias, probe, expected):
            return candidate.to(layer.base_layer.weight.dtype)
    raise ConfigError(
        f"cannot merge layer {name!r}: the update of method {layer.method.name!r} ({layer.method.class_path()}) "
        "is not linear in its input, so no single weight computes it; export the adapter without --merge"
    )


def method_merged_weight(layer: AdapterLinear) -> Tensor | None:
    """The method's own `merged_weight` of ``layer`` (None if it defines none)."""
    if layer.merged or not layer.adapter_enabled:
        return layer.base_layer.weight.clone()  # the layer computes its base weight alone
    try:
        return layer.method.merged_weight(layer, layer.base_layer.weight.clone())  # (d_out, d_in)
    except (MergeError, NotImplementedError):
        return None


def forward_on_identity(layer: AdapterLinear) -> Tensor:
    """``W`` read off the layer's forward: ``(forward(I) - b)^T`` (exact for a linear update)."""
    weight = layer.base_layer.weight
    identity = torch.eye(layer.in_features, dtype=weight.dtype, device=weight.device)  # (d_in, d_in)
    out = layer(identity)  # (d_in, d_out): row i = W e_i + b
    if layer.base_layer.bias is not None:
        out = out - layer.base_layer.bias
    return out.t().contiguous()  # (d_out, d_in)


def computes(weight: Tensor, bias: Tensor | None, probe: Tensor, expected: Tensor) -> bool:
    """Whether ``probe W^T + b`` equals ``expected`` to float64 rounding."""
    got = F.linear(probe, weight, bias)  # (k, d_out)
    error = (got - expected).abs().max()  # NaN where got is not finite
    return bool(error <= RELATIVE_TOLERANCE * expected.abs().max().clamp_min(1.0))


def merged_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """``model.state_dict()`` of the plain model: adapted layers as ``<name>.weight``/``.bias``, no adapter tensors.

    Raises:
        ConfigError: a layer cannot be merged (gated, not linear), or an adapted weight is tied to another
            parameter (e.g. ``lm_head`` to the embedding), which the merged model could not keep tied.
    """
    layers = dict(adapter_layers(model))
    require_untied(model, layers)
    merged: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        owner = next((name for name in layers if key.startswith(f"{name}.")), None)
        if owner is None:
            merged[key] = value
            continue
        rest = key[len(owner) + 1 :]
        if rest == "base_layer.weight":
            merged[f"{owner}.weight"] = merged_linear_weight(layers[owner], owner)
        elif rest == "base_layer.bias":
            merged[f"{owner}.bias"] = value
    return merged


def require_untied(model: nn.Module, layers: dict[str, AdapterLinear]) -> None:
    """Refuse adapted weights that share their storage with another parameter of ``model``."""
    adapted = {layer.base_layer.weight.data_ptr(): name for name, layer in layers.items()}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        owner = adapted.get(parameter.data_ptr())
        if owner is not None and name != f"{owner}.base_layer.weight":
            raise ConfigError(
                f"cannot merge layer {owner!r}: its weight is tied to {name!r} (e.g. tie_word_embeddings), and "
                "a merged model cannot keep them tied; adapt other modules or export the adapter without --merge"
            )
