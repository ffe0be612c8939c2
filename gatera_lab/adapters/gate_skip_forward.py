"""The gate-skipping forward of one gated `AdapterLinear` (the model-level tools: `gate_skip`).

With ``layer.gate_skip_threshold = tau``, in eval mode and without autograd, token ``t`` gets
``y_t = W0 x_t + b`` if ``g_t < tau`` (exactly the base output) and ``W0 x_t + b + g_t * DeltaW(x_t)`` otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from gatera_lab.adapters.adapter_linear import AdapterLinear


def skip_active(layer: AdapterLinear) -> bool:
    """Whether ``layer`` skips low-gate tokens now: a threshold is set, eval mode, autograd off."""
    threshold = getattr(layer, "gate_skip_threshold", None)
    return threshold is not None and not layer.training and not torch.is_grad_enabled()


# Below this fraction of skipped tokens, gathering the kept tokens costs more than it saves.
GATHER_MIN_SKIPPED_FRACTION = 0.5


def forward_gated_skipping(layer: AdapterLinear, x: Tensor, gate: Tensor, threshold: float) -> Tensor:
    """``W0 x + b`` for every token, plus ``g * DeltaW(x)`` for the tokens with ``g >= threshold``.

    With many tokens skipped, the update is computed for the kept tokens only (gathered, then added back).
    With few skipped, gathering costs more than it saves; a method that declares
    ``exact_base_at_zero_gate = True`` (its `forward_gated` returns the base layer's output bit for bit
    where ``g = 0``: the built-in LoRA, DoRA and HiRA) then runs its normal path with those gates set to 0.

    Args:
        layer: a gated adapter layer.
        x: (..., d_in) input.
        gate: (..., 1) gate values of ``x``.
        threshold: tokens with a gate below it get the base output unchanged.
    """
    kept_mask = gate >= threshold  # (..., 1)
    keep = kept_mask.reshape(-1).nonzero().squeeze(1)  # (K,) indices of kept tokens
    tokens = gate.numel()
    if keep.numel() == tokens:
        return layer.method.forward_gated(layer, x, gate)
    if keep.numel() == 0:
        return layer.base_layer(x)
    skipped_fraction = 1.0 - keep.numel() / tokens
    if skipped_fraction < GATHER_MIN_SKIPPED_FRACTION and layer.method.exact_base_at_zero_gate:
        return layer.method.forward_gated(layer, x, gate * kept_mask)  # (..., d_out)
    base_out = layer.base_layer(x)  # (..., d_out)
    out = base_out.reshape(tokens, -1)  # (N, d_out), a view of base_out
    x_kept = x.reshape(tokens, -1).index_select(0, keep)  # (K, d_in)
    gate_kept = gate.reshape(tokens, 1).index_select(0, keep)  # (K, 1)
    base_kept = out.index_select(0, keep)  # (K, d_out)
    update = gate_kept * layer.method.delta(layer, layer.dropout(x_kept), base_kept)  # (K, d_out)
    out.index_add_(0, keep, update.to(out.dtype))
    return base_out
