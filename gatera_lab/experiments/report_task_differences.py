"""The results page's table of where each accuracy claim's difference comes from: the same ``A minus B``, task
by task.

For a claim over method pairs ``(A_k, B_k)``, k = 1..K, and the seeds ``S`` that every method of it has, the
cell of task ``t`` is, in points,

    d_t = 100 * mean_{s in S} [ mean_k acc(A_k, s, t) - mean_k acc(B_k, s, t) ]

and the last column is the same over the runs' averages (the claim's difference). Plain means, no interval:
a task holds one eighth of the paired rows, so its difference is roughly sqrt(8) = 2.8 times as noisy as
the average's (whose interval `claims` gives).
"""

from __future__ import annotations

import statistics
from typing import Any

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.claims import common_seeds
from gatera_lab.experiments.report_claims import Sides, present_sides
from gatera_lab.experiments.report_data import HEADER, ReportData, table
from gatera_lab.experiments.seed_results import TestedRun

TASKS = list(COMMONSENSE_COLUMNS)


def _side_value(groups: list[dict[Any, TestedRun]], seed: Any, task: str | None) -> float:
    """Mean over ``groups`` of one seed's accuracy on ``task`` (None: the run's average)."""
    runs = [group[seed] for group in groups]
    return statistics.fmean(run.average if task is None else run.accuracy[task] for run in runs)


def task_differences(sides: Sides) -> tuple[list[float], list[Any]] | None:
    """``[d_t for every task] + [d_avg]`` in points, and the seeds used; None without a common seed or with a
    task missing from a run."""
    first, second = sides
    groups = [*first, *second]
    seeds = common_seeds(groups)
    if not seeds or any(
        task not in group[seed].accuracy for group in groups for seed in seeds for task in TASKS
    ):
        return None
    values = [
        100
        * statistics.fmean(_side_value(first, seed, task) - _side_value(second, seed, task) for seed in seeds)
        for task in [*TASKS, None]
    ]
    return values, seeds


def task_difference_table(data: ReportData) -> str:
    """One row per comparison of the claims file with a seed that every side has."""
    rows = []
    for claim in data.claims_spec.comparisons:
        sides = present_sides(claim.pairs, data.finals, data.finals)
        result = task_differences(sides) if sides else None
        if result is not None:
            values, seeds = result
            rows.append([claim.label, *(f"{value:+.1f}" for value in values), ", ".join(map(str, seeds))])
    if not rows:
        return "No comparison has both sides tested yet.\n"
    return table(["comparison", *HEADER[1:], "seeds"], rows)
