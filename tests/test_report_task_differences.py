"""Each comparison task by task: mean over seeds of (mean of side A minus mean of side B), in points."""

from __future__ import annotations

import pytest

from gatera_lab.experiments import seed_results
from gatera_lab.experiments.report_task_differences import task_differences

TASKS = ("boolq", "piqa", "social_i_qa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")


def run(boolq: float, others: float) -> seed_results.TestedRun:
    accuracy = {task: boolq if task == "boolq" else others for task in TASKS}
    return seed_results.TestedRun(None, {"test": {"accuracy": accuracy}})


def test_task_differences_average_over_pairs_then_seeds_on_common_seeds_only():
    # side A: two methods; side B: two methods; seed 44 only on one side's method: left out
    first = [
        {42: run(0.60, 0.50), 43: run(0.70, 0.50), 44: run(0.9, 0.9)},
        {42: run(0.50, 0.40), 43: run(0.50, 0.40)},
    ]
    second = [{42: run(0.50, 0.50), 43: run(0.50, 0.50)}, {42: run(0.50, 0.50), 43: run(0.50, 0.50)}]
    values, seeds = task_differences((first, second))
    assert seeds == [42, 43]
    # boolq: seed 42 (0.55 - 0.5), seed 43 (0.60 - 0.5): mean 7.5 points; other tasks: 0.45 - 0.5 = -5 points
    assert values[0] == pytest.approx(7.5) and values[1:8] == pytest.approx([-5.0] * 7)
    assert values[8] == pytest.approx((7.5 + 7 * -5.0) / 8)  # the average column: mean of the runs' averages
    assert task_differences(([{42: run(0.5, 0.5)}], [{43: run(0.5, 0.5)}])) is None  # no common seed
