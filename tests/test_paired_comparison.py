"""Paired statistics: exact McNemar, the paired interval (`difference_interval`'s rule), the MDD and the verdict
rules."""

from __future__ import annotations

import random

import pytest

from gatera_lab.evaluation.paired_comparison import PairedDifference, mcnemar, paired_difference, verdict
from gatera_lab.evaluation.student_t import t_quantile


def test_mcnemar_is_the_exact_binomial_test() -> None:
    assert mcnemar([1, 1, 0, 0], [1, 1, 0, 0]) == (0, 0, 1.0)
    n10, n01, p = mcnemar([1] * 10 + [0] * 2, [0] * 10 + [1] * 2)
    assert (n10, n01) == (10, 2) and p == pytest.approx(2 * (1 + 12 + 66) / 2**12)  # 0.0386


def test_interval_covers_a_known_difference_and_sets_the_mdd() -> None:
    """Was pinned to the bootstrap's MDD of 2.80 standard errors; the rule is now a t interval, so the MDD is
    (t_0.975 + t_0.80) standard errors on the interval's own degrees of freedom."""
    generator = random.Random(1)
    tasks = ["a"] * 300 + ["b"] * 300
    truth = [[int(generator.random() < 0.6) for _ in tasks] for _ in range(3)]
    other = [[row if generator.random() < 0.8 else 1 - row for row in seed] for seed in truth]
    result = paired_difference(truth, other, tasks)
    exact = 100 * sum(sum(x) - sum(y) for x, y in zip(truth, other, strict=True)) / (3 * 600)
    assert result.difference == pytest.approx(exact) and result.low < exact < result.high
    nu = result.degrees_of_freedom
    assert result.minimum_detectable == pytest.approx(
        (t_quantile(0.975, nu) + t_quantile(0.8, nu)) * result.standard_error
    )
    assert (result.high - result.low) / 2 == pytest.approx(t_quantile(0.975, nu) * result.standard_error)
    assert len(result.mcnemar) == 3 and result.rows == 600 and result.seeds == 3
    same = paired_difference(truth, truth, tasks)
    assert same.difference == same.low == same.high == 0.0


@pytest.mark.parametrize(
    ("low", "high", "paper", "expected"),
    [
        (0.5, 2.0, 0.81, "reproduced"),
        (-2.0, -0.5, 0.81, "contradicted"),
        (-0.6, 0.5, 0.81, "smaller than the paper's effect"),
        (-1.0, 3.0, 0.81, "not resolved"),
        (-1.0, 3.0, None, "not resolved"),
        (-3.0, -1.0, -2.0, "reproduced"),
    ],
)
def test_verdicts(low: float, high: float, paper: float | None, expected: str) -> None:
    middle, half = (low + high) / 2, (high - low) / 2  # named fields: the interval now keeps its parts and nu
    result = PairedDifference(
        difference=middle,
        low=low,
        high=high,
        standard_error=half / 4.30,
        seed_error=half / 4.30,
        row_error=0.0,
        degrees_of_freedom=2.0,
        multiplier=4.30,
        minimum_detectable=5.36 * half / 4.30,
        seeds=3,
        rows=100,
    )
    assert verdict(result, paper) == expected


def test_comparison_of_records_with_rows_is_paired_row_by_row() -> None:
    """Records that keep their test rows get the paired interval, the MDD and McNemar in their sentence."""
    from gatera_lab.experiments.claims import compare
    from gatera_lab.experiments.seed_results import TestedRun

    ids = [f"piqa/{index}" for index in range(200)] + [f"boolq/{index}" for index in range(200)]

    def run(correct: list[int]) -> TestedRun:
        predicted = "".join("0" if hit else "1" for hit in correct)
        test = {"accuracy": {"piqa": 0.5}, "rows": {"ids": ids, "gold": "0" * 400, "predicted": predicted}}
        return TestedRun(run=None, record={"test": test})

    generator = random.Random(3)
    base = [[int(generator.random() < 0.5) for _ in ids] for _ in range(2)]
    better = [[1 if generator.random() < 0.3 else hit for hit in seed] for seed in base]
    comparison = compare(
        "B minus A", [{s: run(better[s]) for s in (0, 1)}], [{s: run(base[s]) for s in (0, 1)}], paper=None
    )
    assert comparison.paired is not None and comparison.paired.mcnemar[0][1] == 0  # B never loses a row
    assert comparison.paired.low > 0 and comparison.verdict == "reproduced"
    sentence = comparison.sentence()
    assert (
        "95% interval" in sentence and "minimum detectable difference" in sentence and "McNemar p" in sentence
    )
    assert "degrees of freedom" in sentence and "Caution: two seeds" in sentence  # two seeds: a caution
