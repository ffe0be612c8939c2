"""LoRA (Hu et al. 2021, arXiv 2106.09685, section 4.1).

    y = W0 x + b + s * B A x,    A (r, d_in) Kaiming-uniform,  B (d_out, r) zeros,  s = alpha / r.

Mergeable: ``W = W0 + s B A``. Fast path: the scale (and, gated, the gate) multiplies the rank-r
intermediate, ``s B (g * A x) = g * s B A x``, which touches r values per token instead of d_out, and the
update is accumulated into the base output by the GEMM itself (``addmm``), without an (N, d_out)
temporary for ``B A x`` nor a separate addition.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.registry import register_method


def low_rank_factors(base_layer: nn.Linear, r: int) -> dict[str, nn.Parameter]:
    """``lora_A`` (r, d_in) Kaiming-uniform as ``nn.Linear``, ``lora_B`` (d_out, r) zeros."""
    weight = base_layer.weight
    lora_a = torch.empty(r, base_layer.in_features, device=weight.device, dtype=weight.dtype)
    nn.init.kaiming_uniform_(lora_a, a=math.sqrt(5))
    lora_b = torch.zeros(base_layer.out_features, r, device=weight.device, dtype=weight.dtype)
    return {"lora_A": nn.Parameter(lora_a), "lora_B": nn.Parameter(lora_b)}


@register_method("lora", gated_name="lora_gate", description="LoRA: W0 x + s B A x")
class LoRA(AdapterMethod):
    """Low-rank update ``s B A x``."""

    exact_base_at_zero_gate = True

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        return low_rank_factors(base_layer, self.r)

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        return self.scaling * F.linear(F.linear(x, layer.lora_A), layer.lora_B)  # (..., d_out)

    delta_weight_uses_base = False  # DeltaW = s B A: unmerging recomputes it, nothing is kept while merged

    def delta_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        return self.scaling * (layer.lora_B @ layer.lora_A)  # (d_out, d_in)

    def forward_ungated(self, layer: AdapterLinear, x: Tensor) -> Tensor:
        hidden = F.linear(layer.dropout(x), layer.lora_A) * self.scaling  # (..., r)
        return add_low_rank(layer.base_layer(x), hidden, layer.lora_B)  # (..., d_out)

    def forward_gated(self, layer: AdapterLinear, x: Tensor, gate: Tensor) -> Tensor:
        hidden = F.linear(layer.dropout(x), layer.lora_A) * (gate * self.scaling)  # (..., r)
        return add_low_rank(layer.base_layer(x), hidden, layer.lora_B)  # (..., d_out)


def add_low_rank(out: Tensor, hidden: Tensor, lora_B: Tensor) -> Tensor:
    """``out + hidden B^T`` in one GEMM: out (..., d_out), hidden (..., r), lora_B (d_out, r)."""
    out2 = out.reshape(-1, out.shape[-1])  # (N, d_out)
    return torch.addmm(out2, hidden.reshape(-1, hidden.shape[-1]), lora_B.t()).view(out.shape)
