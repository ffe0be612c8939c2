"""Paired statistics for two settings scored on the same test rows: McNemar, the interval, the MDD, a verdict.

Setting A and setting B are each run at seeds ``s = 1..S`` on the same ``n`` rows (the same seeded test
sample); ``a_si, b_si in {0, 1}`` say whether row ``i`` was answered correctly. In points,

    d = 100 * mean_s mean_i (a_si - b_si)

(rows weigh equally; with the same number of rows per task that is the difference of the task means).

- **McNemar** (within one seed): of the discordant rows, ``n10`` are right under A only and ``n01`` under B
  only; under "no difference" ``n10 ~ Binomial(n10 + n01, 1/2)``. The exact two-sided p-value is
  ``min(1, 2 P(X <= min(n10, n01)))``.
- **Interval and minimum detectable difference** (across seeds and rows): `difference_interval`'s rule, one
  rule for the results page and ``gatera-lab compare``. A seed part (a paired t over the per-seed
  differences, ``S - 1`` degrees of freedom) and the shared test rows' part (within tasks) are added, and
  the interval is ``d -/+ t_{0.975, nu} se`` with Welch-Satterthwaite degrees of freedom ``nu``; the MDD is
  ``(t_{0.975, nu} + t_{0.80, nu}) se``. A claim over two seeds or fewer carries `seed_warning`'s caution.

Verdict (`verdict`): *reproduced* when the interval lies on the paper's side of 0; *contradicted* when it
lies on the other side; *smaller than the paper's effect* when it contains 0 but its upper end (in the
paper's direction) lies below the paper's effect; *not resolved* otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from gatera_lab.evaluation.difference_interval import DifferenceInterval, difference_interval, seed_warning

__all__ = ["PairedDifference", "mcnemar", "paired_difference", "seed_warning", "verdict"]


@dataclass(frozen=True)
class PairedDifference(DifferenceInterval):
    """`DifferenceInterval` (points) and McNemar's test per seed."""

    mcnemar: tuple[tuple[int, int, float], ...] = ()  # per seed: (n10, n01, p)

    @property
    def warning(self) -> str:
        """`seed_warning` of this comparison's seeds ("" from three seeds on)."""
        return seed_warning(self.seeds)


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
    first: Sequence[Sequence[float]],
    second: Sequence[Sequence[float]],
    tasks: Sequence[str],
    scale: float = 100.0,
) -> PairedDifference:
    """``d`` of ``first`` (A) minus ``second`` (B), each one list per seed over the same rows.

    Args:
        first, second: ``[seed][row]`` correctness, seeds paired by position, rows in one order; a value
            may be a mean over several methods (then McNemar, which needs 0/1 outcomes, is left out).
        tasks: the task of each row (the row part of the interval is stratified by task).
        scale: the unit of ``d``: 100 gives points for 0/1 outcomes; 1 keeps the values' own unit (gates).
    """
    if len(first) != len(second) or not first:
        raise ValueError(f"need the same positive number of seeds, got {len(first)} and {len(second)}")
    rows = len(tasks)
    if any(len(values) != rows for values in (*first, *second)):
        raise ValueError("every seed must score the same rows as `tasks`")
    binary = all(value in (0, 1) for values in (*first, *second) for value in values)
    deltas = [
        [scale * (a - b) for a, b in zip(x, y, strict=True)] for x, y in zip(first, second, strict=True)
    ]  # [seed][row]
    interval = difference_interval(deltas, tasks)
    return PairedDifference(
        **{field.name: getattr(interval, field.name) for field in fields(DifferenceInterval)},
        mcnemar=tuple(mcnemar(x, y) for x, y in zip(first, second, strict=True)) if binary else (),
    )


def verdict(result: DifferenceInterval, paper: float | None, claimed_sign: float = 1.0) -> str:
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
