"""HiRA (Huang et al., ICLR 2025): a Hadamard high-rank update.

    DeltaW = W0 ⊙ (B A),   A (r, d_in) Kaiming-uniform,  B (d_out, r) zeros,  no scaling factor.

``W0 ⊙ BA`` can have full rank although ``BA`` has rank r. Mergeable: ``W = W0 ⊙ (1 + B A)``. Fast paths
(`gatera_lab.adapters.hira_fused_ops`): ungated without dropout, one fused weight ``W0 ⊙ (1 + BA)``; otherwise
``W0 x + b`` plus one GEMM accumulating ``(g ⊙ x_d) (W0 ⊙ BA)^T`` into it.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.adapters.hira_fused_ops import hadamard_fused_linear, hadamard_gated_linear
from gatera_lab.methods.lora import low_rank_factors
from gatera_lab.registry import register_method


@register_method("hira", gated_name="hira_gate", description="HiRA: W0 x + (W0 ⊙ B A) x, a high-rank update")
class HiRA(AdapterMethod):
    """Hadamard product of the frozen weight with a low-rank matrix; ``alpha`` is not used."""

    exact_base_at_zero_gate = True

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        return low_rank_factors(base_layer, self.r)

    def delta_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        return base_weight * (layer.lora_B @ layer.lora_A)  # (d_out, d_in)

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        return F.linear(x, self.delta_weight(layer, layer.base_layer.weight))  # (..., d_out)

    def forward_ungated(self, layer: AdapterLinear, x: Tensor) -> Tensor:
        base = layer.base_layer
        if layer.training and self.dropout > 0:
            x_drop = layer.dropout(x)  # (..., d_in)
            return hadamard_gated_linear(x, x_drop, None, base.weight, base.bias, layer.lora_A, layer.lora_B)
        return hadamard_fused_linear(x, base.weight, base.bias, layer.lora_A, layer.lora_B)  # (..., d_out)

    def forward_gated(self, layer: AdapterLinear, x: Tensor, gate: Tensor) -> Tensor:
        base = layer.base_layer
        x_drop = layer.dropout(x) if layer.training and self.dropout > 0 else None  # (..., d_in)
        return hadamard_gated_linear(x, x_drop, gate, base.weight, base.bias, layer.lora_A, layer.lora_B)

    def merged_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        return base_weight * (1 + layer.lora_B @ layer.lora_A)

    def unmerged_weight(self, layer: AdapterLinear, merged_weight: Tensor) -> Tensor:
        return merged_weight / (1 + layer.lora_B @ layer.lora_A)
