"""RowScale: one learned scale per output row of the frozen weight, an (IA)^3-like update.

    DeltaW = s * diag(d) W0,   d (d_out,) zeros,   so   W = (1 + s d) ⊙ W0 when merged.

This file is the README's "Your own method" example: dropped into ``methods/`` (or shipped in a package
with an entry point of the group ``gatera_lab.methods``) it is a complete method. tests/test_registry_plugins.py
copies it into temporary packages and runs the method matrix on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab import AdapterLinear, AdapterMethod, register_method


@register_method("row_scale", gated_name="row_scale_gate", description="RowScale: W0 x + s d ⊙ W0 x")
class RowScale(AdapterMethod):
    """Scales each output of ``W0 x`` by ``1 + s d_i``; ``r`` is not used."""

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        weight = base_layer.weight
        scale = torch.zeros(base_layer.out_features, device=weight.device, dtype=weight.dtype)
        return {"row_scale": nn.Parameter(scale)}

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        return self.scaling * layer.row_scale * F.linear(x, layer.base_layer.weight)  # (..., d_out)

    def merged_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        return (1 + self.scaling * layer.row_scale).unsqueeze(1) * base_weight  # (d_out, d_in)

    def unmerged_weight(self, layer: AdapterLinear, merged_weight: Tensor) -> Tensor:
        return merged_weight / (1 + self.scaling * layer.row_scale).unsqueeze(1)  # (d_out, d_in)
