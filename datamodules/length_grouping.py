"""Length-grouped batches from a random permutation, so short rows do not pay for the padding of long ones.

Given a permutation ``order`` of the rows (drawn from a seed) and the rows' token counts:

1. cut ``order`` into windows of ``group_size * window_groups`` rows;
2. sort each window by length (longest first) and cut it into groups of ``group_size`` rows;
3. shuffle the full groups with the same generator; a final short group stays last.

A batch is one group, so its rows have similar lengths, yet which rows meet in a batch and the order of
the batches stay random and depend only on the permutation's seed. Rows never leave their window, so a
window of ``window_groups`` batches bounds how far an epoch's order drifts from the permutation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def length_grouped_order(
    order: Sequence[int],
    lengths: Sequence[int],
    group_size: int,
    generator: torch.Generator,
    window_groups: int = 50,
) -> list[int]:
    """``order`` rearranged into length-sorted groups of ``group_size`` in a random group order (see above)."""
    window = group_size * window_groups
    groups: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda index: -lengths[index])
        groups.extend(chunk[first : first + group_size] for first in range(0, len(chunk), group_size))
    tail = [groups.pop()] if groups and len(groups[-1]) < group_size else []
    shuffled = [groups[index] for index in torch.randperm(len(groups), generator=generator).tolist()]
    return [index for group in (*shuffled, *tail) for index in group]
