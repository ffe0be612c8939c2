"""Training batches bounded by tokens: a batch of whole rows cut into micro-batches of at most N token slots.

A batch of ``batch_size`` rows is as large as its longest rows make it (B x T token slots), so the longest
batches of an epoch set a run's peak memory. `split_rows` cuts a batch into consecutive groups of whole
rows, each with at most ``max_tokens`` slots (rows x its own longest row; a single row longer than that
is a group of its own), trimming the padding columns at the end that no row of the group uses. Rows are
independent in a causal LM's forward and padding is on the right, so each row's outputs are what the
whole batch gives it. `micro_batched_means` then computes the batch's loss as the same token means over the
whole batch, so one optimizer step still sees the batch it was given.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from gatera_lab.errors import ConfigError
from gatera_lab.training.causal_lm_loss import LossOn, target_count

Batch = dict[str, Tensor]
TokenSums = Callable[[Batch], tuple[Tensor, Tensor | None]]


def split_rows(batch: Batch, max_tokens: int) -> list[Batch]:
    """Consecutive groups of ``batch``'s rows with at most ``max_tokens`` token slots each (one row at least).

    Args:
        batch: tensors with the rows on dimension 0; (B, T) ones (``input_ids``, ``attention_mask``,
            ``response_mask``, ...) are trimmed to the group's last used column.
        max_tokens: the most (rows x columns) slots of one group.
    """
    if max_tokens < 1:
        raise ConfigError(f"option 'model.micro_batch_tokens' must be >= 1, got {max_tokens}")
    mask = batch["attention_mask"]  # (B, T)
    rows, width = mask.shape
    used = (mask != 0).flip(-1).int().argmax(-1)  # (B,) columns after each row's last real token
    lengths = (width - used).where(mask.any(-1), 0).tolist()  # each row's last real column + 1
    groups, start, longest = [], 0, 0
    for row, length in enumerate(lengths):
        longest_with_row = max(longest, length)
        if row > start and (row - start + 1) * longest_with_row > max_tokens:
            groups.append((start, row, longest))
            start, longest_with_row = row, length
        longest = longest_with_row
    groups.append((start, rows, longest))
    return [_rows(batch, first, end, max(columns, 1), width) for first, end, columns in groups]


def _rows(batch: Batch, first: int, end: int, columns: int, width: int) -> Batch:
    part = {}
    for key, value in batch.items():
        if isinstance(value, Tensor) and value.dim() >= 1 and value.shape[0] == len(batch["attention_mask"]):
            value = value[first:end]  # (b, ...)
            if value.dim() == 2 and value.shape[1] == width:
                value = value[:, :columns]  # (b, t)
        part[key] = value
    return part


def micro_batched_means(
    batch: Batch, max_tokens: int, token_sums: TokenSums, loss_on: LossOn
) -> tuple[Tensor, Tensor | None]:
    """The batch's task-loss and gate-entropy token means from micro-batches of at most ``max_tokens`` slots.

        task = sum_i sum_{t in S_i} l_t / |S|,    entropy = sum_i |R_i| H_i / |R|

    (``S_i`` a micro-batch's targets, ``R_i`` its real tokens, ``H_i`` its mean gate entropy).
    ``token_sums(part)`` gives a micro-batch's ``(sum_{t in S_i} l_t, |R_i| H_i)``, the second None when the
    method is ungated. With gradients each micro-batch is recomputed in backward (`torch.utils.checkpoint`),
    so only one micro-batch's activations are alive at a time; its dropout masks are replayed.
    """
    task, entropy = 0.0, None
    for part in split_rows(batch, max_tokens):
        if torch.is_grad_enabled():
            part_task, part_entropy = checkpoint(token_sums, part, use_reentrant=False)
        else:
            part_task, part_entropy = token_sums(part)
        task = task + part_task
        if part_entropy is not None:
            entropy = part_entropy if entropy is None else entropy + part_entropy
    real_count = (batch["attention_mask"] != 0).sum()
    return task / target_count(batch, loss_on), (None if entropy is None else entropy / real_count)
