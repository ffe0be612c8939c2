"""The majority-label baseline of a test subset: always answering each task's most common gold label.

For task ``t`` with gold labels ``y_1..y_n`` (the rows a run tests: the seeded ``test_sample``, the first
``test_limit`` rows, or all of its test set),

    majority(t) = max_k #{i : y_i = k} / n,

the accuracy of a constant predictor that knows the subset's label frequencies. A fine-tuned model that
only learned each task's label format and one preferred label scores about this, so a method has learned
a task only where it is above this line.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.run_config import get_path


def majority_label_accuracy(config: dict[str, Any]) -> dict[str, float]:
    """``{task: majority share, "avg": mean over tasks}`` for the test subset of a resolved run config.

    Raises the data source's `GateraError` (or `OSError`) when the test sets cannot be read.
    """
    from gatera_lab.datamodules.scored_rows import load_test_rows

    examples, _ = load_test_rows(
        list(COMMONSENSE_COLUMNS),
        get_path(config, "data.init_args.source") or "olmo",
        get_path(config, "data.init_args.cache_dir"),
        get_path(config, "data.init_args.data_dir"),
        get_path(config, "data.init_args.test_limit"),
        get_path(config, "data.init_args.test_sample"),
        get_path(config, "data.init_args.test_sample_seed") or 0,
    )
    counts = {task: Counter() for task in COMMONSENSE_COLUMNS}  # task -> gold label index -> rows
    for example in examples:
        counts[example.task][example.gold] += 1
    shares = {task: max(c.values()) / sum(c.values()) for task, c in counts.items()}
    shares["avg"] = sum(shares.values()) / len(shares)
    return shares
