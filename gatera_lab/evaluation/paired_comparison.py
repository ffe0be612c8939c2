"""Paired statistics for two settings scored on the same test rows: McNemar, a paired bootstrap, the MDD.

Setting A and setting B are each run at seeds ``s = 1..S`` on the same ``n`` rows (the same seeded test
sample); ``a_si, b_si in {0, 1}`` say whether row ``i`` was answered correctly. In points,

    d = 100 * mean_s mean_i (a_si - b_si)

(rows weigh equally; with the same number of rows per task that is the difference of the task means).

- **McNemar** (within one seed): of the discordant rows, ``n10`` are right under A only and ``n01`` under B
  only; under "no difference" ``n10 ~ Binomial(n10 + n01, 1/2)``. The exact two-sided p-value is
  ``min(1, 2 P(X <= min(n10, n01)))``.
- **Paired bootstrap** (across seeds and rows): each replicate draws S seeds with replacement and, within
  each task, that task's rows with replacement (the same draw for A and B, so the pairing is kept), and
  recomputes ``d``; the 2.5th and 97.5th percentiles of 4,000 replicates are the 95% interval and their
  standard deviation is the standard error ``se`` (seed-to-seed and row-to-row variation together).
- **Minimum detectable difference**: ``MDD = (z_0.975 + z_0.8) se = 2.80 se``, the true difference this
  design finds at the 5% level with 80% power. A claim smaller than the MDD cannot be resolved by it.

Verdict (`verdict`): *reproduced* when the interval lies on the paper's side of 0; *contradicted* when it
lies on the other side; *smaller than the paper's effect* when it contains 0 but its upper end (in the
paper's direction) lies below the paper's effect; *not resolved* otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

Z_POWER = 1.959964 + 0.841621  # z_{0.975} + z_{0.80}


@dataclass(frozen=True)
class PairedDifference:
    """``d`` (points) with its bootstrap interval and standard error, the MDD, and McNemar per seed."""

    difference: float
    low: float
    high: float
    standard_error: float
    seeds: int
    rows: int
    mcnemar: tuple[tuple[int, int, float], ...]  # per seed: (n10, n01, p)

    @property
    def minimum_detectable(self) -> float:
        return Z_POWER * self.standard_error


def mcnemar(first: Sequence[int], second: Sequence[int]) -> tuple[int, int, float]:
    """``(n10, n01, p)``: rows right under ``first`` only, under ``second`` only, and the exact p-value."""
    n10 = sum(1 for a, b in zip(first, second, strict=True) if a and not b)
    n01 = sum(1 for a, b in zip(first, second, strict=True) if b and not a)
    discordant = n10 + n01
    if discordant == 0:
        return n10, n01, 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(n10, n01) + 1))
    return n10, n01, min(1.0, 2 * tail / 2**discordant)


def paired_difference(
    first: Sequence[Sequence[int]],
    second: Sequence[Sequence[int]],
    tasks: Sequence[str],
    replicates: int = 4000,
    seed: int = 0,
    scale: float = 100.0,
) -> PairedDifference:
    """``d`` of ``first`` (A) minus ``second`` (B), each one 0/1 list per seed over the same rows.

    Args:
        first, second: ``[seed][row]`` correctness, seeds paired by position, rows in one order; a value
            may be a mean over several methods (then McNemar, which needs 0/1 outcomes, is left out).
        tasks: the task of each row (the bootstrap resamples rows within tasks).
        replicates: bootstrap replicates.
        seed: the bootstrap's random seed (the interval is reproducible).
        scale: the unit of ``d``: 100 gives points for 0/1 outcomes; 1 keeps the values' own unit (gates).
    """
    if len(first) != len(second) or not first:
        raise ValueError(f"need the same positive number of seeds, got {len(first)} and {len(second)}")
    rows = len(tasks)
    if any(len(values) != rows for values in (*first, *second)):
        raise ValueError("every seed must score the same rows as `tasks`")
    binary = all(value in (0, 1) for values in (*first, *second) for value in values)
    deltas = torch.tensor(first, dtype=torch.float64) - torch.tensor(second, dtype=torch.float64)  # (S, n)
    seeds = deltas.shape[0]
    generator = torch.Generator().manual_seed(seed)
    row_counts = torch.zeros(replicates, rows, dtype=torch.float64)  # (R, n) times each row is drawn
    members: dict[str, list[int]] = {}
    for index, task in enumerate(tasks):
        members.setdefault(task, []).append(index)
    for indices in members.values():
        block = torch.tensor(indices)
        picked = block[
            torch.randint(len(indices), (replicates, len(indices)), generator=generator)
        ]  # (R, n_t)
        row_counts.scatter_add_(1, picked, torch.ones(picked.shape, dtype=torch.float64))
    seed_draws = torch.randint(seeds, (replicates, seeds), generator=generator)  # (R, S)
    seed_counts = torch.zeros(replicates, seeds, dtype=torch.float64).scatter_add_(
        1, seed_draws, torch.ones(seed_draws.shape, dtype=torch.float64)
    )  # (R, S)
    per_seed = row_counts @ deltas.T  # (R, S): each seed's sum over the drawn rows
    draws = (scale * (per_seed * seed_counts).sum(1) / (seeds * rows)).sort().values  # (R,)
    spread = float(draws.std())
    return PairedDifference(
        difference=float(scale * deltas.sum() / (seeds * rows)),
        low=float(draws[int(0.025 * replicates)]),
        high=float(draws[min(replicates - 1, int(0.975 * replicates))]),
        standard_error=spread,
        seeds=seeds,
        rows=rows,
        mcnemar=tuple(mcnemar(x, y) for x, y in zip(first, second, strict=True)) if binary else (),
    )


def verdict(result: PairedDifference, paper: float | None, claimed_sign: float = 1.0) -> str:
    """The verdict of the module docstring; ``paper`` None means "claimed in direction ``claimed_sign``"."""
    sign = math.copysign(1.0, paper) if paper else claimed_sign
    low, high = sorted((sign * result.low, sign * result.high))  # the interval in the claim's direction
    if low > 0:
        return "reproduced"
    if high < 0:
        return "contradicted"
    if paper is not None and high < abs(paper):
        return "smaller than the paper's effect"
    return "not resolved"
