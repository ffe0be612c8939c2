"""Gradient-norm clipping that holds on every strategy, sharded ones included.

Clipping rescales every gradient by ``min(1, c / (||g|| + 1e-6))``, where ``||g||`` is the 2-norm of all the
trainable parameters' gradients together and ``c`` the threshold (``trainer.gradient_clip_val``). Under
sharding each process holds a slice of each gradient, so ``||g||`` must be summed over processes:

    ||g||^2 = sum_processes sum_local g_i^2

- FSDP1 (Lightning's ``FSDPStrategy``): the root `FullyShardedDataParallel` unit's own ``clip_grad_norm_``
  does this; Lightning's FSDP precision plugin refuses ``torch.nn.utils.clip_grad_norm_`` (it would clip
  each process's shard by its own norm), which is why `sharded_gradient_clipper` exists.
- FSDP2 (``fully_shard``, Lightning's ``ModelParallelStrategy``): gradients are ``DTensor`` shards;
  `clip_dtensor_gradients` sums the local squares and all-reduces them over the shards' process group.
- Anything else (one process, DDP, whose gradients are whole on every process): ``None``, Lightning's own
  clipping applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.fsdp import FullyShardedDataParallel
from torch.distributed.tensor import DTensor

EPSILON = 1e-6


def clip_dtensor_gradients(parameters: Iterable[nn.Parameter], max_norm: float) -> Tensor:
    """Clip the gradients of ``parameters`` (sharded ``DTensor``s or whole tensors) to a total 2-norm of
    ``max_norm``; returns the norm before clipping (float32, the same on every process)."""
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    if not gradients:
        return torch.zeros(())
    groups = {gradient.device_mesh.get_group() for gradient in gradients if isinstance(gradient, DTensor)}
    if len(groups) > 1:
        raise ValueError("gradient clipping across several device meshes is not supported")
    local = [gradient.to_local() if isinstance(gradient, DTensor) else gradient for gradient in gradients]
    squares = torch.stack([torch.sum(part.float() ** 2) for part in local]).sum()  # ()
    if groups:
        dist.all_reduce(squares, group=groups.pop())  # a shard's squares summed over its group
    total_norm = squares.sqrt()
    scale = torch.clamp(max_norm / (total_norm + EPSILON), max=1.0)  # ()
    for part in local:
        part.mul_(scale.to(part.dtype))
    return total_norm


def sharded_gradient_clipper(
    root: nn.Module, parameters: Iterable[nn.Parameter]
) -> Callable[[float], Tensor] | None:
    """The norm clipping for a sharded model (``root`` as the strategy wrapped it), or ``None`` if its
    gradients are whole on every process and Lightning's clipping is right."""
    if isinstance(root, FullyShardedDataParallel):
        return root.clip_grad_norm_
    parameters = list(parameters)
    if any(isinstance(parameter, DTensor) for parameter in parameters):
        return lambda max_norm: clip_dtensor_gradients(parameters, max_norm)
    return None
