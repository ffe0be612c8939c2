"""DoRA (Liu et al., ICML 2024, arXiv 2402.09353, sections 4.1 and 4.3).

    W' = m * V / ||V||_c,   V = W0 + s B A,   m (d_out,) initialised to the row norms of W0.

The norm ``n = ||V||_c`` is detached (section 4.3). The update reuses the base output ``W0 x`` instead of
a second dense GEMM: ``DeltaW(x) = (m/n - 1) W0 x + (m/n) s B A x``; with dropout the low-rank term sees
``dropout(x)``. Fast paths: `gatera_lab.adapters.dora_fused_ops`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.adapters.dora_fused_ops import at_least_float32, dora_direction_norm, dora_gated_linear
from gatera_lab.methods.lora import add_low_rank, low_rank_factors
from gatera_lab.registry import register_method


@register_method(
    "dora", gated_name="dora_gate", description="DoRA: magnitude m times direction (W0 + s B A)/||.||"
)
class DoRA(AdapterMethod):
    """Weight-decomposed low-rank adaptation."""

    exact_base_at_zero_gate = True

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        magnitude = (
            base_layer.weight.detach().to(at_least_float32(base_layer.weight.dtype)).norm(dim=1)
        )  # (d_out,) as `dora_direction_norm`
        return {**low_rank_factors(base_layer, self.r), "lora_magnitude": nn.Parameter(magnitude)}

    def ratio(self, layer: AdapterLinear) -> Tensor:
        """``m / n``: (d_out,)."""
        norm = dora_direction_norm(layer.base_layer.weight, layer.lora_A, layer.lora_B, self.scaling)
        return layer.lora_magnitude / norm

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        ratio, bias = self.ratio(layer), layer.base_layer.bias  # (d_out,)
        base_product = base_out if bias is None else base_out - bias  # (..., d_out) = W0 x
        low_rank = F.linear(F.linear(x, layer.lora_A), layer.lora_B)  # (..., d_out)
        return (ratio - 1) * base_product + ratio * self.scaling * low_rank

    def forward_ungated(self, layer: AdapterLinear, x: Tensor) -> Tensor:
        ratio, bias = self.ratio(layer), layer.base_layer.bias  # (d_out,)
        hidden = F.linear(layer.dropout(x), layer.lora_A) * self.scaling  # (..., r)
        base_product = F.linear(x, layer.base_layer.weight)  # (..., d_out) = W0 x
        combined = add_low_rank(base_product, hidden, layer.lora_B)  # (..., d_out) = W0 x + s B A x_d
        out = combined * ratio if bias is None else torch.addcmul(bias, combined, ratio)  # (..., d_out)
        return out.to(combined.dtype)  # the float32 ratio would promote a bfloat16 residual stream to float32

    def forward_gated(self, layer: AdapterLinear, x: Tensor, gate: Tensor) -> Tensor:
        base = layer.base_layer
        if base.weight.requires_grad:  # the fused function assumes a frozen W0
            return super().forward_gated(layer, x, gate)
        x_drop = layer.dropout(x) if layer.training and self.dropout > 0 else None  # (..., d_in)
        norm = dora_direction_norm(base.weight, layer.lora_A, layer.lora_B, self.scaling)  # (d_out,)
        args = (base.weight, base.bias, layer.lora_A, layer.lora_B, layer.lora_magnitude, norm, self.scaling)
        return dora_gated_linear(x, x_drop, gate, *args)  # (..., d_out)

    def merged_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        direction = base_weight + self.scaling * (layer.lora_B @ layer.lora_A)  # (d_out, d_in)
        layer.merge_cache["direction_norm"] = norm = direction.norm(dim=1)  # (d_out,)
        return (layer.lora_magnitude / norm).unsqueeze(1) * direction

    def unmerged_weight(self, layer: AdapterLinear, merged_weight: Tensor) -> Tensor:
        norm = layer.merge_cache.pop("direction_norm")  # (d_out,)
        direction = merged_weight * (norm / layer.lora_magnitude).unsqueeze(1)  # (d_out, d_in)
        return direction - self.scaling * (layer.lora_B @ layer.lora_A)
