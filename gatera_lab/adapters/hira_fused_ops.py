"""HiRA's fast paths: custom autograd functions for the Hadamard update that save less and compute no more.

Notation: ``x`` (N, d_in) tokens, frozen ``W0`` (d_out, d_in) and bias ``b``, factors ``B`` (d_out, r) and
``A`` (r, d_in), ``Wd = W0 ⊙ (B A)``, ``gy = dL/dy`` (N, d_out).

`hadamard_fused_linear`: ``y = x (W0 ⊙ (1 + B A))^T + b`` (ungated HiRA without dropout). One dense GEMM
forward, two backward (``dL/dx = gy W_f`` and ``dL/dW_f = gy^T x``, then ``dL/d(BA) = dL/dW_f ⊙ W0``).
Only ``x`` and the small factors are saved; ``W_f`` is recomputed in backward (one rank-r GEMM and one
elementwise pass over the weight, about r/N of a dense GEMM) instead of being kept alive, per layer,
until backward: this path has time to spare against PEFT's five dense GEMMs, so it spends it on memory.

`hadamard_gated_linear`: ``y = W0 x + b + g ⊙ (Wd x_d)`` with a per-token gate ``g`` (N, 1) (or none) and
``x_d`` the dropped-out input (or ``x`` itself). Because ``g`` is one scalar per token,
``g_t (Wd x_t) = Wd (g_t x_t)``: the update is accumulated into the base output by one GEMM on ``g ⊙ x_d``
without an (N, d_out) temporary. Backward, with ``q = gy Wd`` (N, d_in):

    dL/dx_d = g ⊙ q,   dL/dg_t = q_t . x_d,t,   dL/dWd = gy^T (g ⊙ x_d),   dL/dx += gy W0,

so the gate gradient needs no saved (N, d_out) update. Saved: ``x``, ``x_d`` (when it differs), ``g``
and ``Wd`` (d_out, d_in): this path does PEFT's five dense GEMMs, so recomputing ``Wd`` would cost time
(one rank-r GEMM) it cannot spare; PEFT keeps the same ``Wd`` alive for its backward.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gatera_lab.adapters.fused_autocast import apply_under_autocast


def _hadamard_delta(weight: Tensor, lora_A: Tensor, lora_B: Tensor) -> Tensor:
    return (lora_B @ lora_A).mul_(weight)  # (d_out, d_in) = W0 ⊙ BA, one buffer


def _fused_weight(weight: Tensor, lora_A: Tensor, lora_B: Tensor) -> Tensor:
    product = lora_B @ lora_A  # (d_out, d_in)
    return torch.addcmul(weight, weight, product, out=product)  # (d_out, d_in) = W0 + W0 ⊙ BA


def _factor_grads(grad_delta: Tensor, lora_A: Tensor, lora_B: Tensor, needs_a: bool, needs_b: bool):
    """``dL/dA = B^T G``, ``dL/dB = G A^T`` for ``G = dL/d(BA)`` (d_out, d_in)."""
    grad_a = lora_B.t() @ grad_delta if needs_a else None  # (r, d_in)
    grad_b = grad_delta @ lora_A.t() if needs_b else None  # (d_out, r)
    return grad_a, grad_b


class HadamardFusedLinear(torch.autograd.Function):
    """``y = x (W0 ⊙ (1 + B A))^T + b``; see the module docstring."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, lora_A: Tensor, lora_B: Tensor):
        ctx.save_for_backward(x, weight, lora_A, lora_B)
        ctx.has_bias = bias is not None
        return F.linear(x, _fused_weight(weight, lora_A, lora_B), bias)  # (..., d_out)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):
        x, weight, lora_A, lora_B = ctx.saved_tensors
        needs_x, needs_w, needs_bias, needs_a, needs_b = ctx.needs_input_grad
        grad_out2 = grad_out.reshape(-1, grad_out.shape[-1])  # (N, d_out)
        grad_x = grad_w = grad_bias = grad_a = grad_b = None
        if needs_x:
            grad_x = (grad_out2 @ _fused_weight(weight, lora_A, lora_B)).view(x.shape)  # (..., d_in)
        if needs_w or needs_a or needs_b:
            grad_fused = grad_out2.t() @ x.reshape(-1, x.shape[-1])  # (d_out, d_in)
            if needs_w:
                grad_w = grad_fused * (1 + lora_B @ lora_A)  # (d_out, d_in)
            grad_fused.mul_(weight)  # now dL/d(BA)
            grad_a, grad_b = _factor_grads(grad_fused, lora_A, lora_B, needs_a, needs_b)
        if needs_bias and ctx.has_bias:
            grad_bias = grad_out2.sum(0)  # (d_out,)
        return grad_x, grad_w, grad_bias, grad_a, grad_b


class HadamardGatedLinear(torch.autograd.Function):
    """``y = W0 x + b + g ⊙ (Wd x_d)``; ``g`` or ``x_d`` may be ``None``; see the module docstring."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        x_drop: Tensor | None,
        gate: Tensor | None,
        weight: Tensor,
        bias: Tensor | None,
        lora_A: Tensor,
        lora_B: Tensor,
    ):
        d_in = x.shape[-1]
        source = x if x_drop is None else x_drop  # (..., d_in) what Wd multiplies
        scaled = source if gate is None else source * gate  # (..., d_in) = g ⊙ x_d
        out = F.linear(x, weight, bias)  # (..., d_out) = W0 x + b
        delta = _hadamard_delta(weight, lora_A, lora_B)  # (d_out, d_in)
        out2 = out.view(-1, out.shape[-1])  # (N, d_out)
        out2.addmm_(scaled.reshape(-1, d_in), delta.t())  # += (g ⊙ x_d) Wd^T
        ctx.save_for_backward(x, x_drop, gate, weight, lora_A, lora_B, delta)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor):
        x, x_drop, gate, weight, lora_A, lora_B, delta = ctx.saved_tensors
        needs_x, needs_xd, needs_gate, needs_w, needs_bias, needs_a, needs_b = ctx.needs_input_grad
        d_in, d_out = x.shape[-1], grad_out.shape[-1]
        grad_out2 = grad_out.reshape(-1, d_out)  # (N, d_out)
        source = (x if x_drop is None else x_drop).reshape(-1, d_in)  # (N, d_in)
        gate2 = None if gate is None else gate.reshape(-1, 1)  # (N, 1)
        grad_x = grad_xd = grad_gate = grad_w = grad_bias = grad_a = grad_b = None
        update_input = (x_drop is None and needs_x) or (x_drop is not None and needs_xd)
        if update_input or needs_gate:
            q = grad_out2 @ delta  # (N, d_in) = gy Wd
            if needs_gate and gate is not None:
                grad_gate = (q * source).sum(-1, keepdim=True).view(gate.shape)  # (..., 1)
            grad_source = q if gate2 is None else q.mul_(gate2)  # (N, d_in) = g ⊙ gy Wd
            if x_drop is None:
                if needs_x:
                    grad_x = grad_source.addmm_(grad_out2, weight).view(x.shape)  # + gy W0
            else:
                if needs_xd:
                    grad_xd = grad_source.view(x_drop.shape)
                if needs_x:
                    grad_x = (grad_out2 @ weight).view(x.shape)  # (..., d_in)
        elif needs_x:
            grad_x = (grad_out2 @ weight).view(x.shape)
        if needs_w or needs_a or needs_b:
            if gate2 is None:
                grad_delta = grad_out2.t() @ source  # (d_out, d_in) = dL/dWd
            elif d_out < d_in:  # scale the narrower operand by the gate
                grad_delta = (grad_out2 * gate2).t() @ source
            else:
                grad_delta = grad_out2.t() @ (source * gate2)
            if needs_w:
                grad_w = grad_out2.t() @ x.reshape(-1, d_in) + grad_delta * (lora_B @ lora_A)
            grad_delta.mul_(weight)  # now dL/d(BA)
            grad_a, grad_b = _factor_grads(grad_delta, lora_A, lora_B, needs_a, needs_b)
        if needs_bias and ctx.has_bias:
            grad_bias = grad_out2.sum(0)
        return grad_x, grad_xd, grad_gate, grad_w, grad_bias, grad_a, grad_b


def hadamard_fused_linear(
    x: Tensor, weight: Tensor, bias: Tensor | None, lora_A: Tensor, lora_B: Tensor
) -> Tensor:
    """``x (W0 ⊙ (1 + B A))^T + b``: (..., d_in) -> (..., d_out)."""
    return apply_under_autocast(HadamardFusedLinear, x, weight, bias, lora_A, lora_B)


def hadamard_gated_linear(
    x: Tensor,
    x_drop: Tensor | None,
    gate: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    lora_A: Tensor,
    lora_B: Tensor,
) -> Tensor:
    """``W0 x + b + g ⊙ ((W0 ⊙ B A) x_d)``: (..., d_in) -> (..., d_out); ``g`` (..., 1) or ``None`` (= 1),
    ``x_d`` the dropped-out input or ``None`` (= ``x``)."""
    return apply_under_autocast(HadamardGatedLinear, x, x_drop, gate, weight, bias, lora_A, lora_B)
