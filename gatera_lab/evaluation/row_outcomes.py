"""Every scored row of an evaluation as plain data, so two runs can be compared row by row.

A row outcome is ``{"row_id", "task", "gold", "predicted", "correct"}`` and, for the likelihood protocol,
``"scores"`` (each candidate's summed log-probability) and the predictions of both metrics, ``"acc"``
(``argmax_k s_k``) and ``"acc_norm"`` (``argmax_k s_k / chars_k``); ``predicted`` is the one the task
reports. `metric_accuracies` recomputes both metrics per task from the outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gatera_lab.evaluation.evaluate_batch import BatchEvaluation


def row_outcomes(outputs: Sequence[BatchEvaluation], task_names: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of ``outputs`` (in the order scored), one dict each (see the module docstring)."""
    rows = []
    for output in outputs:
        size = output.predicted.numel()
        row_ids = output.row_ids or [""] * size
        for row in range(size):
            outcome: dict[str, Any] = {
                "row_id": row_ids[row],
                "task": task_names[int(output.task_index[row])],
                "gold": int(output.gold[row]) if output.gold is not None else None,
                "predicted": int(output.predicted[row]),
                "correct": bool(output.correct[row]),
            }
            if output.scores is not None:
                scores = [float(value) for value in output.scores[row].tolist()]
                outcome["scores"] = [round(value, 5) for value in scores if not math.isinf(value)]
                outcome["acc"] = int(output.predicted_acc[row])
                outcome["acc_norm"] = int(output.predicted_acc_norm[row])
            rows.append(outcome)
    return rows


def metric_accuracies(rows: Sequence[dict[str, Any]], metric: str) -> dict[str, float]:
    """Per-task accuracy of ``metric`` (``acc``, ``acc_norm`` or ``predicted``) and the mean of the tasks."""
    hits: dict[str, list[int]] = {}
    for row in rows:
        hits.setdefault(row["task"], []).append(int(row[metric] == row["gold"]))
    accuracies = {task: sum(values) / len(values) for task, values in hits.items()}
    if accuracies:
        accuracies["avg"] = sum(accuracies.values()) / len(accuracies)
    return accuracies
