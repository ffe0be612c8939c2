"""Loss gradients of token means over the global batch under data parallelism (DDP).

Each term of `GateraModule`'s loss is a mean over a set of tokens of the batch: the task loss over target
tokens, ``L = sum_{t in S} l_t / |S|``, and the gate entropy over real tokens. Under DDP each of the ``W``
processes holds part ``S_r`` of the global batch (``n_r = |S_r|``, ``N = sum_r n_r``) and DDP averages the
processes' gradients, so backpropagating each process's own mean would give

    (1/W) sum_r grad(sum_{t in S_r} l_t) / n_r,

which is not the gradient of the global batch's mean when the processes hold different numbers of tokens
(tokens of a process with fewer of them weigh more). Scaling process ``r``'s gradient by the share

    w_r = W n_r / N        (N from one all-reduce of the counts)

gives exactly ``grad(sum_{t in S} l_t) / N``: what one process computes on the whole global batch. Only the
gradient is scaled; the loss value stays this process's mean (what is logged and what diagnostics read).
Outside a process group, or with ``W = 1``, nothing changes.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def data_parallel_world_size() -> int:
    """``W``, the default process group's size; 1 outside a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def global_token_shares(counts: Tensor) -> Tensor:
    """The shares ``w = W n / N`` of this process's token counts, one all-reduce (a collective).

    Args:
        counts: (K,) this process's token counts ``n``, one per loss term.

    Returns:
        (K,) float64 ``W * n / N``, with ``N`` the counts summed over processes (ones outside DDP).
    """
    world_size = data_parallel_world_size()
    counts = counts.detach().to(torch.float64)  # (K,)
    if world_size == 1:
        return torch.ones_like(counts)
    totals = counts.clone()  # (K,)
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return world_size * counts / totals.clamp(min=1.0)  # (K,)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the incoming gradient times a constant ``factor`` backward."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, value: Tensor, factor: Tensor) -> Tensor:
        ctx.factor = factor
        return value.clone()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.factor.to(grad.dtype), None


def scale_gradient(value: Tensor, factor: Tensor) -> Tensor:
    """``value`` itself (same numbers), whose gradient is multiplied by ``factor`` (a scalar, not trained)."""
    return _ScaleGradient.apply(value, factor.detach())
