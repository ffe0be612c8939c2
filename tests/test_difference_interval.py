"""The interval rule: t quantiles against SciPy, the two parts and their degrees of freedom by hand, and
constructed studies whose seeds disagree (wide, not resolved) and agree (narrow)."""

from __future__ import annotations

import math
import statistics

import pytest

from gatera_lab.evaluation.difference_interval import (
    difference_interval,
    seed_warning,
    spread_text,
    welch_satterthwaite,
)
from gatera_lab.evaluation.paired_comparison import paired_difference, verdict
from gatera_lab.evaluation.student_t import t_cdf, t_quantile

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("nu", [0.7, 1, 2, 2.6, 3.4, 12.2, 100, 3992, 1e5])
def test_t_quantile_and_cdf_match_scipy(nu: float) -> None:
    for p in (0.6, 0.8, 0.975, 0.995, 0.025):
        assert t_quantile(p, nu) == pytest.approx(stats.t.ppf(p, nu), rel=1e-9, abs=1e-9)
    for t in (-8.0, -1.5, 0.0, 0.4, 2.0, 4.3, 40.0):
        assert t_cdf(t, nu) == pytest.approx(stats.t.cdf(t, nu), abs=1e-9)
    assert t_quantile(0.975, math.inf) == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)


def test_known_multipliers() -> None:
    assert t_quantile(0.975, 2) == pytest.approx(4.302653, abs=1e-6)  # three paired seeds alone
    assert t_quantile(0.975, 1) == pytest.approx(12.706205, abs=1e-6)  # two
    assert t_quantile(0.80, 2) == pytest.approx(1.060660, abs=1e-6)
    with pytest.raises(ValueError, match="0 < p < 1"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="positive"):
        t_quantile(0.9, 0)


def test_parts_and_degrees_of_freedom_by_hand() -> None:
    """Two tasks of 3 rows, three seeds: each part from its formula, nu from Welch-Satterthwaite, t from
    SciPy on that nu."""
    deltas = [[1, 0, 0, 1, 1, 0], [0, 0, 0, 1, 0, 0], [1, 1, 0, 1, 1, 1]]
    tasks = ["a", "a", "a", "b", "b", "b"]
    result = difference_interval(deltas, tasks)
    per_seed = [3 / 6, 1 / 6, 5 / 6]
    seed_variance = statistics.variance(per_seed) / 3
    means = [2 / 3, 1 / 3, 0, 1, 2 / 3, 1 / 3]  # m_i
    row_variance = sum(3 * statistics.variance(means[k : k + 3]) / 36 for k in (0, 3))
    nu = (seed_variance + row_variance) ** 2 / (seed_variance**2 / 2 + row_variance**2 / 4)
    se = math.sqrt(seed_variance + row_variance)
    assert result.difference == pytest.approx(0.5)
    assert result.seed_error**2 == pytest.approx(seed_variance)
    assert result.row_error**2 == pytest.approx(row_variance)
    assert result.degrees_of_freedom == pytest.approx(nu)
    assert result.multiplier == pytest.approx(stats.t.ppf(0.975, nu), rel=1e-9)
    assert (result.low, result.high) == pytest.approx(
        (0.5 - result.multiplier * se, 0.5 + result.multiplier * se)
    )
    mdd = (stats.t.ppf(0.975, nu) + stats.t.ppf(0.8, nu)) * se
    assert result.minimum_detectable == pytest.approx(mdd, rel=1e-9)
    assert f"t_0.975 = {result.multiplier:.2f} on {nu:.1f} degrees of freedom" in spread_text(result, 2)


def test_welch_satterthwaite_bounds() -> None:
    assert welch_satterthwaite([(1.0, 2), (0.0, 3992)]) == pytest.approx(2)  # the seeds' part alone
    assert welch_satterthwaite([(0.0, 2), (1.0, 3992)]) == pytest.approx(3992)
    assert 2 < welch_satterthwaite([(1.0, 2), (1.0, 3992)]) < 3992 + 2
    assert welch_satterthwaite([(0.0, 2), (0.0, 3992)]) == 2  # a point interval: the smaller nu


def study(per_seed_net: list[int], rows_per_task: int = 1000, tasks: int = 4) -> tuple[list, list, list]:
    """A and B at one seed per entry of ``per_seed_net``, on ``tasks * rows_per_task`` rows: B right on the odd
    rows; A the same except on 40 even and 40 odd rows of each task, where A is right on the first
    ``20 + net / 2`` even ones and wrong on the first ``20 - net / 2`` odd ones (``net`` rows per task in A's
    favour). The window moves with the seed: each seed's discordant rows are partly its own."""
    task_of = [f"t{k}" for k in range(tasks) for _ in range(rows_per_task)]
    first, second = [], []
    for seed, net in enumerate(per_seed_net):
        b = [row % 2 for row in range(rows_per_task)] * tasks
        a = list(b)
        for k in range(tasks):
            start = k * rows_per_task + 16 * seed  # even
            for j in range(40):
                a[start + 2 * j] = int(j < 20 + net // 2)  # B wrong here: A wins the first ones
                a[start + 2 * j + 1] = int(j >= 20 - net // 2)  # B right here: A loses the first ones
        first.append(a)
        second.append(b)
    return first, second, task_of


def test_seeds_that_disagree_give_a_wide_interval_that_does_not_resolve() -> None:
    """Per-seed differences of +1.2, -0.8 and +0.6 points: their spread dominates, nu stays near 2 (2.8) and
    t_0.975 above 3.2, so the interval is wide and contains both 0 and a paper's +0.8."""
    first, second, tasks = study([12, -8, 6])
    result = paired_difference(first, second, tasks)
    per_seed = [
        100 * (sum(a) - sum(b)) / len(tasks) for a, b in zip(first, second, strict=True)
    ]  # the constructed differences
    assert per_seed == pytest.approx([1.2, -0.8, 0.6])
    assert result.seed_error > 2 * result.row_error
    assert 2 <= result.degrees_of_freedom < 3 and result.multiplier > 3.2
    assert result.low < 0 < result.high and result.high - result.low > 4
    assert verdict(result, 0.8) == "not resolved" and verdict(result, None) == "not resolved"
    assert result.warning == ""  # three seeds: no caution


def test_seeds_that_agree_give_a_narrow_interval() -> None:
    """The same design with every seed at +1.2 points: the seeds' part is 0, nu is the rows' (n - T), t near
    1.96, and the interval is narrow and lies above 0."""
    first, second, tasks = study([12, 12, 12])
    result = paired_difference(first, second, tasks)
    assert result.seed_error == pytest.approx(0.0, abs=1e-12)
    assert result.degrees_of_freedom == pytest.approx(len(tasks) - 4)
    assert result.multiplier == pytest.approx(stats.t.ppf(0.975, len(tasks) - 4), rel=1e-9)
    assert result.high - result.low < 1.5 and result.low > 0
    assert verdict(result, None) == "reproduced"
    wide = paired_difference(*study([12, -8, 6]))
    assert result.high - result.low < (wide.high - wide.low) / 3


def test_one_or_two_seeds_carry_a_caution() -> None:
    first, second, tasks = study([12])
    one = paired_difference(first, second, tasks)
    assert one.seed_error == 0 and one.degrees_of_freedom == pytest.approx(len(tasks) - 4)
    assert "one seed" in one.warning and "rows only" in one.warning
    two = paired_difference(*study([12, -8]))
    assert "two seeds" in two.warning and two.degrees_of_freedom < 3
    assert seed_warning(3) == seed_warning(10) == ""


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="same 2 rows"):
        difference_interval([[1, 0], [1]], ["a", "a"])
    with pytest.raises(ValueError, match="at least one seed"):
        difference_interval([], ["a"])
