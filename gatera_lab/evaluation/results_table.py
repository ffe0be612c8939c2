"""The results table of the commonsense benchmark (columns BoolQ ... OBQA, Avg) and its JSON / CSV files.

``results`` maps a row name (a method, a model) to ``{task: accuracy in [0, 1]}``. Avg is the mean of the
task accuracies present in the row; a row that lacks some tasks shows ``-`` there and marks its Avg with
``*`` (not comparable with a full row). Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gatera_lab.evaluation.commonsense_task_names import COMMONSENSE_COLUMNS
from gatera_lab.io.atomic_write import write_json_atomic, write_text_atomic

Results = Mapping[str, Mapping[str, float]]


def row_average(accuracies: Mapping[str, float], columns: Mapping[str, str] = COMMONSENSE_COLUMNS) -> float:
    """Mean accuracy over the tasks of ``columns`` present in ``accuracies`` (nan if none)."""
    values = [accuracies[task] for task in columns if task in accuracies and not math.isnan(accuracies[task])]
    return sum(values) / len(values) if values else float("nan")


def _percent(value: float | None, digits: int) -> str:
    return "" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}"


def _cells(accuracies: Mapping[str, float], columns: Mapping[str, str], digits: int) -> list[str]:
    """Task cells and Avg in percent; ``-`` for a missing task, ``*`` on the Avg of an incomplete row."""
    cells = [_percent(accuracies.get(task), digits) or "-" for task in columns]
    complete = all(task in accuracies for task in columns)
    average = _percent(row_average(accuracies, columns), digits)
    return [*cells, (average + ("" if complete else "*")) if average else "-"]


def render_table(
    results: Results,
    columns: Mapping[str, str] = COMMONSENSE_COLUMNS,
    digits: int = 2,
    name_header: str = "Model",
) -> str:
    """A Markdown table in percent, one row per entry of ``results``."""
    header = [name_header, *columns.values(), "Avg"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += [
        "| " + " | ".join([name, *_cells(row, columns, digits)]) + " |" for name, row in results.items()
    ]
    if any(not all(task in row for task in columns) for row in results.values()):
        lines.append("\n\\* average over the tasks present only")
    return "\n".join(lines) + "\n"


def write_results_csv(
    path: str | os.PathLike[str],
    results: Results,
    columns: Mapping[str, str] = COMMONSENSE_COLUMNS,
    digits: int = 2,
) -> Path:
    """One row per entry, accuracies in percent (empty cell for a missing task), written atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", *columns.values(), "Avg"])
    for name, row in results.items():
        values = [row.get(task) for task in columns] + [row_average(row, columns)]
        writer.writerow([name, *(_percent(value, digits) for value in values)])
    write_text_atomic(Path(path), buffer.getvalue())
    return Path(path)


def write_results_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """``payload`` as indented JSON, written atomically."""
    write_json_atomic(Path(path), dict(payload))
    return Path(path)
