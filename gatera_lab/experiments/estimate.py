"""How long a planned run will take, from the sweep's time model (`EstimateSpec`) and the run's config.

    fit  = launch + max_steps * accumulate_grad_batches * seconds_per_step
           + validations * val_size * seconds_per_val_row
    test = launch + sum_tasks min(test_limit, test size) * seconds_per_test_row

``validations`` is ``max_steps // val_check_interval`` for an integer interval, else 1 (end of the epoch).
A run that is recorded costs nothing; one that needs only its test costs the test. The test sizes are those
of the LLM-Adapters test sets (`TEST_SIZES`).
"""

from __future__ import annotations

import math

from gatera_lab.experiments.plan import PlannedRun
from gatera_lab.experiments.run_config import get_path
from gatera_lab.experiments.sweep_file import EstimateSpec

TEST_SIZES = {
    "boolq": 3270,
    "piqa": 1838,
    "social_i_qa": 1954,
    "hellaswag": 10042,
    "winogrande": 1267,
    "arc_easy": 2376,
    "arc_challenge": 1172,
    "openbookqa": 500,
}


def test_rows(run: PlannedRun) -> int:
    """Rows the run's test scores: the first ``test_limit`` rows of each task's test set."""
    tasks = get_path(run.resolved, "data.init_args.tasks") or list(TEST_SIZES)
    limit = get_path(run.resolved, "data.init_args.test_limit")
    sizes = [TEST_SIZES.get(task, limit or 0) for task in tasks]
    return sum(size if limit is None else min(limit, size) for size in sizes)


def fit_seconds(run: PlannedRun, estimate: EstimateSpec) -> float:
    steps = get_path(run.resolved, "trainer.max_steps", -1)
    if not isinstance(steps, int) or steps <= 0:
        return math.nan  # epochs only: not estimated
    accumulate = get_path(run.resolved, "trainer.accumulate_grad_batches", 1) or 1
    interval = get_path(run.resolved, "trainer.val_check_interval")
    validations = steps // interval if isinstance(interval, int) and interval > 0 else 1
    val_rows = get_path(run.resolved, "data.init_args.val_size", 0) or 0
    return (
        estimate.seconds_per_launch
        + steps * accumulate * estimate.seconds_per_step
        + validations * val_rows * estimate.seconds_per_val_row
    )


def test_seconds(run: PlannedRun, estimate: EstimateSpec) -> float:
    return estimate.seconds_per_launch + test_rows(run) * estimate.seconds_per_test_row


def estimate_seconds(run: PlannedRun, status: str, estimate: EstimateSpec) -> float:
    """Seconds still needed by ``run`` in ``status`` (``pending``, ``needs_test`` or ``done``)."""
    if status == "done":
        return 0.0
    if status == "needs_test":
        return test_seconds(run, estimate)
    seconds = fit_seconds(run, estimate) if run.kind == "train" else 0.0
    return seconds + (test_seconds(run, estimate) if run.needs_test else 0.0)
