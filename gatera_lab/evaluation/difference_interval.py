"""The interval of a difference between two settings tested on the same rows over paired seeds.

Settings A and B are each trained at seeds ``s = 1..S`` and tested on the same ``n`` rows, ``n_t`` of them in
task ``t`` (``T`` tasks); ``delta_si = a_si - b_si`` is row ``i``'s outcome under A minus under B at seed
``s``. The difference and its two sources of error:

    d_s = mean_i delta_si,    d = mean_s d_s                      (rows weigh equally)

- **Seed part**: how far ``d`` would move with S other trainings, the test rows held fixed. The seeds are
  *paired*: a run's seed draws its training order, so A and B at one seed saw the same batches, and the
  records pair runs by seed. A paired t on the per-seed differences:

      v_seed = sum_s (d_s - d)^2 / ((S - 1) S),    nu_seed = S - 1    (none for S = 1)

- **Row part**: how far ``d`` would move with another sample of test rows. Every seed scores the same rows,
  so this part does not shrink with S; it is the variance of a stratified sample's mean of the rows'
  seed-mean differences ``m_i = mean_s delta_si``, the quantity the earlier bootstrap over rows within tasks
  estimated (with ``n_t`` for ``n_t - 1``):

      v_row = sum_t (n_t / n)^2 s_t^2 / n_t,   s_t^2 = sum_{i in t} (m_i - mean_{j in t} m_j)^2 / (n_t - 1),
      nu_row = sum_t (n_t - 1)

  (``s_t^2`` also holds ``1 / S`` of the seed-by-row noise, which ``v_seed`` counts too: the sum is
  conservative, by up to a factor sqrt(2) in ``se`` where that noise is most of the rows' part.)

- **Together**, with Welch-Satterthwaite degrees of freedom:

      se^2 = v_seed + v_row,    nu = se^4 / (v_seed^2 / nu_seed + v_row^2 / nu_row),
      interval = d -/+ t_{0.975, nu} se,    MDD = (t_{0.975, nu} + t_{0.80, nu}) se

  The MDD (minimum detectable difference) is the true difference this design finds at the 5% level with 80%
  power; a claim smaller than it cannot be resolved here.

Why not the earlier bootstrap: redrawing 3 seeds with replacement gives 10 distinct seed sets (3 of them one
seed three times), its variance of the seed mean is ``(S - 1) / S`` of ``v_seed`` and its percentile interval
spans about 1.96 standard errors each way, where ``nu = 2`` calls for ``t_{0.975, 2}`` = 4.30. When the seed
part dominates, ``nu`` stays near ``S - 1`` and the interval widens accordingly; when the row part dominates
(settings whose runs agree across seeds), ``nu`` grows toward ``nu_row`` and the multiplier toward 1.96.
With one seed, the seed part cannot be estimated: the interval covers the rows only (`seed_warning`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from gatera_lab.evaluation.student_t import t_quantile

LEVEL = 0.95
POWER = 0.80


@dataclass(frozen=True)
class DifferenceInterval:
    """``d`` with its interval, standard errors, degrees of freedom and MDD (the module docstring's)."""

    difference: float
    low: float
    high: float
    standard_error: float  # se
    seed_error: float  # sqrt(v_seed); 0 with one seed
    row_error: float  # sqrt(v_row)
    degrees_of_freedom: float  # nu (Welch-Satterthwaite); inf when the rows' part has no limit
    multiplier: float  # t_{0.975, nu}
    minimum_detectable: float  # (t_{0.975, nu} + t_{0.80, nu}) se
    seeds: int
    rows: int


def seed_warning(seeds: int) -> str:
    """The caution a verdict over ``seeds`` seeds carries ("" from three seeds on)."""
    if seeds <= 1:
        return (
            "one seed, so the interval covers the test rows only, not how much trainings with other seeds "
            "differ; the verdict is provisional"
        )
    if seeds == 2:
        return (
            "two seeds, so the seed spread rests on 1 degree of freedom (t_0.975 = 12.7 on it alone); "
            "the verdict is provisional"
        )
    return ""


def degrees_text(nu: float) -> str:
    """``nu`` for a page: one decimal, or "inf"."""
    return "inf" if math.isinf(nu) else f"{nu:.1f}"


def spread_text(interval: DifferenceInterval, digits: int) -> str:
    """How the interval was made, in words: its t, degrees of freedom, standard errors and MDD."""
    return (
        f"t_0.975 = {interval.multiplier:.2f} on {degrees_text(interval.degrees_of_freedom)} degrees of "
        f"freedom; standard error {interval.standard_error:.{digits}f}: seeds {interval.seed_error:.{digits}f}, "
        f"rows {interval.row_error:.{digits}f}; minimum detectable difference "
        f"{interval.minimum_detectable:.{digits}f}"
    )


def welch_satterthwaite(parts: Sequence[tuple[float, float]]) -> float:
    """``(sum_k v_k)^2 / sum_k (v_k^2 / nu_k)`` over ``(v_k, nu_k)``; parts with ``v_k = 0`` drop out.

    With every ``v_k = 0`` the result is the smallest ``nu_k`` (the interval is a point either way).
    """
    kept = [(variance, df) for variance, df in parts if variance > 0 and df > 0]
    if not kept:
        return float(min(df for _, df in parts if df > 0)) if any(df > 0 for _, df in parts) else math.inf
    total = sum(variance for variance, _ in kept)
    return total**2 / sum(variance**2 / df for variance, df in kept)


def difference_interval(
    deltas: Sequence[Sequence[float]], tasks: Sequence[str], level: float = LEVEL, power: float = POWER
) -> DifferenceInterval:
    """The interval of ``d`` from ``deltas[s][i]`` (A minus B at seed ``s`` on row ``i``; any unit).

    Args:
        deltas: one list per seed, rows in one order, seeds paired (A and B at the same seed).
        tasks: the task of each row (the row part is stratified by task).
        level: the interval's coverage (two-sided).
        power: the power at which the MDD is found at level ``1 - level``.
    """
    seeds, rows = len(deltas), len(tasks)
    if not seeds or not rows or any(len(row_values) != rows for row_values in deltas):
        raise ValueError(f"need at least one seed and every seed on the same {rows} rows")
    per_seed = [math.fsum(values) / rows for values in deltas]  # d_s
    difference = math.fsum(per_seed) / seeds  # d
    seed_variance = statistics.variance(per_seed) / seeds if seeds > 1 else 0.0  # v_seed
    row_means = [math.fsum(values) / seeds for values in zip(*deltas, strict=True)]  # m_i
    members: dict[str, list[float]] = {}
    for task, value in zip(tasks, row_means, strict=True):
        members.setdefault(task, []).append(value)
    row_variance = math.fsum(  # sum_t (n_t / n)^2 s_t^2 / n_t
        len(values) * statistics.variance(values) / rows**2 for values in members.values() if len(values) > 1
    )
    row_df = sum(len(values) - 1 for values in members.values())
    nu = welch_satterthwaite([(seed_variance, seeds - 1), (row_variance, row_df)])
    standard_error = math.sqrt(seed_variance + row_variance)
    multiplier = t_quantile(1 - (1 - level) / 2, nu)
    return DifferenceInterval(
        difference=difference,
        low=difference - multiplier * standard_error,
        high=difference + multiplier * standard_error,
        standard_error=standard_error,
        seed_error=math.sqrt(seed_variance),
        row_error=math.sqrt(row_variance),
        degrees_of_freedom=nu,
        multiplier=multiplier,
        minimum_detectable=(multiplier + t_quantile(power, nu)) * standard_error,
        seeds=seeds,
        rows=rows,
    )
