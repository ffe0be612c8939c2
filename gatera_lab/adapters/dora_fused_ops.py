"""DoRA's fast paths (Liu et al. 2024, arXiv 2402.09353): the detached direction norm and gated DoRA as one
autograd function.

With ``u = W0 x + s B A x_d`` accumulated by one GEMM onto the base product (``addmm``):

    ungated:  y = (m/n) * u + b
    gated:    y = W0 x + b + g * ((m/n) * u - W0 x)

so no second dense GEMM with dropout (PEFT recomputes ``W0 dropout(x)``), and one (N, d_out) tensor saved
for backward. The gated layer with a frozen ``W0`` is `dora_gated_linear`: the gate multiplies the rank-r
intermediate and the backward forms two (N, d_out) tensors, not ten.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gatera_lab.adapters.fused_autocast import apply_under_autocast


def at_least_float32(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision dtypes, the dtype itself for float32 and float64."""
    return torch.promote_types(dtype, torch.float32)


def dora_direction_norm(weight: Tensor, lora_A: Tensor, lora_B: Tensor, scaling: float) -> Tensor:
    """``n = ||W0 + s B A||_c`` (one value per output row), detached as section 4.3 prescribes: (d_out,).

    Always float32, whatever the base's dtype and autocast: the magnitude ``m`` is initialised to the same
    float32 norm of ``W0``, so ``m / n`` is exactly 1 at step 0 (DoRA starts as the identity) and its
    distance from 1 is not rounded to bfloat16's steps of 2^-8 near 1.
    """
    with torch.no_grad(), torch.autocast(weight.device.type, enabled=False):
        direction = torch.addmm(
            weight.float(), lora_B.float(), lora_A.float(), alpha=scaling
        )  # (d_out, d_in)
        return direction.norm(dim=1)  # (d_out,)


class DoraGatedLinear(torch.autograd.Function):
    """Gated DoRA with a frozen ``W0``: ``y = W0 x + b + g ⊙ ((m/n - 1) ⊙ W0 x + (m/n) ⊙ s B A x_d)``.

    With ``z = W0 x``, ``h = s A x_d`` (N, r), ``ratio = m / n`` and ``B_r = diag(ratio) B``, the output is
    ``y = z + g ⊙ (ratio - 1) ⊙ z + (g ⊙ h) B_r^T + b``: the gate multiplies the rank-r intermediate, the
    low-rank term is accumulated into the output by one GEMM, and only ``z`` (N, d_out) is saved. Backward,
    with ``P = gy ⊙ z`` and ``c = gy B_r`` (N, r):

        dL/dz     = gy + (g ⊙ gy) ⊙ (ratio - 1)           then dL/dx = dL/dz W0 (+ the low-rank path)
        dL/dg     = P (ratio - 1) + rowsum(h ⊙ c)
        dL/dratio = P^T g + rowsum(B ⊙ M),   M = gy^T (g ⊙ h) (d_out, r),   dL/dm = dL/dratio / n
        dL/dB     = diag(ratio) M,           dL/dh = g ⊙ c

    so no (N, d_out) tensor but ``P`` and ``dL/dz`` is formed (autograd on the same expression forms
    about ten). A token with ``g = 0`` gets ``F.linear(x, W0, b)`` bit for bit (the base layer's output).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        x_drop: Tensor | None,
        gate: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        lora_A: Tensor,
        lora_B: Tensor,
        magnitude: Tensor,
        norm: Tensor,
        scaling: float,
    ):
        d_in, d_out = x.shape[-1], weight.shape[0]
        x2 = x.reshape(-1, d_in)  # (N, d_in)
        source = x2 if x_drop is None else x_drop.reshape(-1, d_in)  # (N, d_in)
        gate2 = gate.reshape(-1, 1)  # (N, 1)
        precise = at_least_float32(magnitude.dtype)
        ratio32 = magnitude.to(precise) / norm.to(precise)  # (d_out,) in float32 at least
        ratio, shift = ratio32.to(x.dtype), (ratio32 - 1).to(x.dtype)  # (d_out,): m/n and m/n - 1
        base_out = F.linear(x2, weight, bias)  # (N, d_out) = W0 x + b, as the base layer computes it
        base = base_out if bias is None else base_out - bias  # (N, d_out) = z
        hidden = (source @ lora_A.t()).mul_(scaling)  # (N, r) = h
        out = torch.addcmul(base_out, base * gate2, shift)  # (N, d_out) = z + b + g (ratio - 1) z
        out.addmm_(hidden * gate2, (lora_B * ratio.unsqueeze(1)).t())  # += (g h) B_r^T
        ctx.save_for_backward(source, gate2, weight, lora_A, lora_B, norm, ratio, shift, base, hidden)
        ctx.scaling, ctx.magnitude_dtype = scaling, magnitude.dtype
        ctx.shapes = (x.shape, None if x_drop is None else x_drop.shape, gate.shape)
        ctx.has_bias = bias is not None
        return out.view(*x.shape[:-1], d_out)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):
        source, gate2, weight, lora_A, lora_B, norm, ratio, shift, base, hidden = ctx.saved_tensors
        x_shape, x_drop_shape, gate_shape = ctx.shapes
        needs = ctx.needs_input_grad
        if needs[3]:
            raise RuntimeError("DoraGatedLinear assumes a frozen base weight; use the autograd path instead")
        grad2 = grad_out.reshape(-1, grad_out.shape[-1])  # (N, d_out)
        lora_b_r = lora_B * ratio.unsqueeze(1)  # (d_out, r) = B_r
        product = grad2 * base  # (N, d_out) = P
        projected = grad2 @ lora_b_r  # (N, r) = c
        grad_gate = grad_magnitude = grad_a = grad_b = grad_x = grad_xd = grad_bias = None
        if needs[2]:
            grad_gate = (product @ shift).unsqueeze(1) + (hidden * projected).sum(-1, keepdim=True)
            grad_gate = grad_gate.view(gate_shape)  # (..., 1)
        if needs[6] or needs[7]:
            mixed = grad2.t() @ (hidden * gate2)  # (d_out, r) = M
            if needs[7]:
                grad_ratio = (product.t() @ gate2).squeeze(1) + (lora_B * mixed).sum(-1)  # (d_out,)
                grad_magnitude = (grad_ratio.to(norm.dtype) / norm).to(ctx.magnitude_dtype)  # (d_out,)
            if needs[6]:
                grad_b = mixed * ratio.unsqueeze(1)  # (d_out, r)
        grad_hidden = projected.mul_(gate2).mul_(ctx.scaling)  # (N, r) = dL/d(A x_d)
        if needs[5]:
            grad_a = grad_hidden.t() @ source  # (r, d_in)
        grad_source = grad_hidden @ lora_A if (needs[0] and x_drop_shape is None) or needs[1] else None
        if needs[0]:
            grad_base = torch.addcmul(grad2, grad2 * gate2, shift)  # (N, d_out) = dL/dz
            # dL/dx = dL/dz W0, plus the low-rank path when x itself (not a dropped copy) fed A
            grad_x = grad_source.addmm_(grad_base, weight) if x_drop_shape is None else grad_base @ weight
            grad_x = grad_x.view(x_shape)  # (..., d_in)
        if needs[1]:
            grad_xd = grad_source.view(x_drop_shape)
        if needs[4] and ctx.has_bias:
            grad_bias = grad2.sum(0)
        return grad_x, grad_xd, grad_gate, None, grad_bias, grad_a, grad_b, grad_magnitude, None, None


def dora_gated_linear(
    x: Tensor,
    x_drop: Tensor | None,
    gate: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    lora_A: Tensor,
    lora_B: Tensor,
    magnitude: Tensor,
    norm: Tensor,
    scaling: float,
) -> Tensor:
    """Gated DoRA (frozen ``W0``, ``norm`` detached): (..., d_in) -> (..., d_out); see `DoraGatedLinear`."""
    return apply_under_autocast(  # m and n stay float32 (positions 6, 7): m/n - 1 is formed before rounding
        DoraGatedLinear, x, x_drop, gate, weight, bias, lora_A, lora_B, magnitude, norm, scaling, keep=(6, 7)
    )
