"""AdamW over the adapter parameters only, with warm-up and a decay schedule.

Weight decay applies to matrices (``lora_A``, ``lora_B``, the gate weight ``w``); vectors (the gate bias
``b``, DoRA's magnitude ``m``) are never decayed. Which tensors are matrices is decided from their shapes
before a strategy shards them (FSDP1 turns every parameter into a 1-D view of its flat shard), when the
caller records them (`matrix_parameter_ids`). The gate's parameters (``token_gate``) may have their own peak
learning rate (``gate_learning_rate``), under the same schedule. The learning rate is

    lr(t) = lr * t / warmup                         for t < warmup
    lr(t) = lr * f((t - warmup) / (T - warmup))     after, f = 1 - p (linear), (1 + cos(pi p)) / 2 (cosine), 1 (constant)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

Schedule = Literal["linear", "cosine", "constant"]


GATE_MODULE = "token_gate"


def matrix_parameter_ids(parameters: Iterable[nn.Parameter]) -> set[int]:
    """The identities of the parameters with two or more dimensions (record them before sharding: FSDP1
    keeps each parameter object but makes it a 1-D view)."""
    return {id(parameter) for parameter in parameters if parameter.ndim >= 2}


def is_gate_parameter(name: str) -> bool:
    """Whether the parameter named ``name`` (full or relative to its adapter layer) is a gate's."""
    return GATE_MODULE in name.split(".")


def adapter_parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    weight_decay: float,
    matrix_ids: set[int] | None = None,
    gate_learning_rate: float | None = None,
) -> list[dict]:
    """AdamW groups: matrices with ``weight_decay``, vectors and scalars without; the gate's parameters in
    groups of their own when ``gate_learning_rate`` is set (their ``lr``).

    Args:
        named_parameters: (name, parameter) pairs; those that do not require grad are left out.
        weight_decay: AdamW weight decay of the matrices.
        matrix_ids: `matrix_parameter_ids` recorded before sharding; ``None``: decided by ``ndim`` now.
        gate_learning_rate: the gate parameters' peak learning rate; ``None``: the optimizer's.
    """
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        matrix = id(parameter) in matrix_ids if matrix_ids is not None else parameter.ndim >= 2
        gate = gate_learning_rate is not None and is_gate_parameter(name)
        groups.setdefault((matrix, gate), []).append(parameter)
    result = []
    for (matrix, gate), parameters in sorted(groups.items(), key=lambda item: (not item[0][0], item[0][1])):
        group = {"params": parameters, "weight_decay": weight_decay if matrix else 0.0}
        if gate:
            group["lr"] = gate_learning_rate
        result.append(group)
    return result


def learning_rate_factor(step: int, warmup_steps: int, total_steps: int, schedule: Schedule) -> float:
    """The multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    learning_rate: float,
    weight_decay: float,
    warmup_steps: int,
    total_steps: int,
    schedule: Schedule,
    matrix_ids: set[int] | None = None,
    gate_learning_rate: float | None = None,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `adapter_parameter_groups` and its per-step scheduler (the same factor for every group)."""
    groups = adapter_parameter_groups(named_parameters, weight_decay, matrix_ids, gate_learning_rate)
    optimizer = torch.optim.AdamW(groups, lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, warmup_steps, total_steps, schedule)
    )
    return optimizer, scheduler
