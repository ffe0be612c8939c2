"""Which test rows a run scores: all, the first ``limit``, or a fixed seeded random sample per task.

Every row keeps its identity in its full test set, ``"<task>/<index>"``, so two runs (or two methods) are
compared row by row. A sample draws ``sample`` indices per task without replacement from
``random.Random(f"{sample_seed}:{task}")`` and keeps them in file order: the same rows for every run with
the same ``sample_seed``, whatever the method, seed or order of tasks. A task with fewer rows gives all of
them (OBQA's test set has 500).
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Sequence

from gatera_lab.datamodules.commonsense_tasks import CommonsenseExample, Source, load_task
from gatera_lab.datamodules.option_checks import require_at_least


def select_indices(
    size: int, task: str, limit: int | None, sample: int | None, sample_seed: int
) -> list[int]:
    """Indices into a test set of ``size`` rows: the first ``limit``, or ``sample`` drawn with the seed."""
    if sample is not None:
        if sample >= size:
            return list(range(size))
        return sorted(random.Random(f"{sample_seed}:{task}").sample(range(size), sample))
    return list(range(size if limit is None else min(limit, size)))


def load_test_rows(
    tasks: Sequence[str],
    source: Source = "olmo",
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
) -> tuple[list[CommonsenseExample], list[str]]:
    """The chosen test examples of ``tasks``, task after task, and their row ids ``"<task>/<index>"``.

    Args:
        limit: the first ``limit`` rows of each task (ignored when ``sample`` is given).
        sample: a seeded random sample of this many rows per task.
        sample_seed: the sample's seed (the same seed, the same rows).
    """
    require_at_least("test_limit", limit, 1, none_means="all rows")
    require_at_least("test_sample", sample, 1, none_means="no sample")
    examples, row_ids = [], []
    for task in tasks:
        rows = load_task(task, "test", source, cache_dir, data_dir)
        name = rows[0].task
        for index in select_indices(len(rows), name, limit, sample, sample_seed):
            examples.append(rows[index])
            row_ids.append(f"{name}/{index}")
    return examples, row_ids


def add_row_options(parser: argparse.ArgumentParser, limit: int) -> None:
    """A script's ``--limit`` (default ``limit``), ``--sample``, ``--sample-seed`` and ``--format`` options:
    which test rows of each task it scores (`load_test_rows`) and in which text format."""
    add = parser.add_argument
    add("--limit", type=int, default=limit, help=f"first N rows per task (default {limit}; 0 for all)")
    add("--sample", type=int, default=None, help="a seeded random sample of N rows per task")
    add("--sample-seed", type=int, default=0, help="seed of --sample (same seed, same rows)")
    add(
        "--format",
        choices=["llm_adapters", "choice_text"],
        default="llm_adapters",
        help="answer labels in the papers' instructions, or the choices' texts after a plain prompt",
    )
