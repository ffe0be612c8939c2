"""DoRA (Liu et al., ICML 2024, arXiv 2402.09353, sections 4.1 and 4.3).

    W' = m * V / ||V||_c,   V = W0 + s B A,   m (d_out,) initialised to the row norms of W0.

The norm ``n = ||V||_c`` (one value per output row) is detached, as section 4.3 prescribes. The layer
reuses the base output instead of a second dense GEMM:

    W' x + b = (m/n - 1) * (W0 x) + (m/n) * s B A x + W0 x + b,   so   DeltaW(x) = (m/n - 1) W0 x + (m/n) s B A x.

With dropout, the low-rank term sees ``dropout(x)`` and the magnitude term the undropped base output.

Fast path, with ``u = W0 x + s B A x_d`` accumulated by one GEMM onto the base product (``addmm``):

    ungated:  y = (m/n) * u + b
    gated:    y = W0 x + b + g * ((m/n) * u - W0 x)

so no second dense GEMM with dropout (PEFT recomputes ``W0 dropout(x)``), and one (N, d_out) tensor saved
for backward. The gated layer (frozen ``W0``) is one autograd function, `gatera_lab.fused_ops.dora_gated_linear`:
the gate multiplies the rank-r intermediate and the backward forms two (N, d_out) tensors, not ten.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab.adapter_linear import AdapterLinear
from gatera_lab.adapter_method import AdapterMethod
from gatera_lab.fused_ops import dora_gated_linear
from gatera_lab.methods.lora import add_low_rank, low_rank_factors
from gatera_lab.registry import register_method


@register_method(
    "dora", gated_name="dora_gate", description="DoRA: magnitude m times direction (W0 + s B A)/||.||"
)
class DoRA(AdapterMethod):
    """Weight-decomposed low-rank adaptation."""

    exact_base_at_zero_gate = True  # forward_gated gives base_layer(x) bit for bit where g = 0

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        magnitude = base_layer.weight.detach().norm(dim=1)  # (d_out,)
        return {**low_rank_factors(base_layer, self.r), "lora_magnitude": nn.Parameter(magnitude)}

    def direction_norm(self, layer: AdapterLinear) -> Tensor:
        """``n = ||W0 + s B A||_c``, detached: (d_out,)."""
        with torch.no_grad():
            weight = layer.base_layer.weight
            direction = torch.addmm(weight, layer.lora_B, layer.lora_A, alpha=self.scaling)  # (d_out, d_in)
            return direction.norm(dim=1)  # (d_out,)

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        ratio = layer.lora_magnitude / self.direction_norm(layer)  # (d_out,)
        bias = layer.base_layer.bias
        base_product = base_out if bias is None else base_out - bias  # (..., d_out) = W0 x
        low_rank = F.linear(F.linear(x, layer.lora_A), layer.lora_B)  # (..., d_out)
        return (ratio - 1) * base_product + ratio * self.scaling * low_rank

    def _combined(self, layer: AdapterLinear, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``W0 x`` (no bias), ``u = W0 x + s B A dropout(x)`` and ``m / n``."""
        ratio = layer.lora_magnitude / self.direction_norm(layer)  # (d_out,)
        base_product = F.linear(x, layer.base_layer.weight)  # (..., d_out) = W0 x
        hidden = F.linear(layer.dropout(x), layer.lora_A) * self.scaling  # (..., r)
        return base_product, add_low_rank(base_product, hidden, layer.lora_B), ratio

    def forward_ungated(self, layer: AdapterLinear, x: Tensor) -> Tensor:
        _, combined, ratio = self._combined(layer, x)  # (..., d_out), (..., d_out), (d_out,)
        bias = layer.base_layer.bias
        return combined * ratio if bias is None else torch.addcmul(bias, combined, ratio)  # (..., d_out)

    def forward_gated(self, layer: AdapterLinear, x: Tensor, gate: Tensor) -> Tensor:
        base = layer.base_layer
        if base.weight.requires_grad:  # the fused function assumes a frozen W0
            return super().forward_gated(layer, x, gate)
        x_drop = layer.dropout(x) if layer.training and self.dropout > 0 else None  # (..., d_in)
        return dora_gated_linear(
            x, x_drop, gate, base.weight, base.bias, layer.lora_A, layer.lora_B,
            layer.lora_magnitude, self.direction_norm(layer), self.scaling,
        )  # fmt: skip

    def merged_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        direction = base_weight + self.scaling * (layer.lora_B @ layer.lora_A)  # (d_out, d_in)
        norm = direction.norm(dim=1)  # (d_out,)
        layer.merge_cache["direction_norm"] = norm
        return (layer.lora_magnitude / norm).unsqueeze(1) * direction

    def unmerged_weight(self, layer: AdapterLinear, merged_weight: Tensor) -> Tensor:
        norm = layer.merge_cache.pop("direction_norm")  # (d_out,)
        direction = merged_weight * (norm / layer.lora_magnitude).unsqueeze(1)  # (d_out, d_in)
        return direction - self.scaling * (layer.lora_B @ layer.lora_A)
