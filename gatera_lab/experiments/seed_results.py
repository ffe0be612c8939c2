"""The tested runs of a plan, grouped for the results page: per method over seeds, zero-shot, entropy sweep,
variants.

For a run with per-task test accuracies ``p_t`` (T tasks), its average is ``avg = sum_t p_t / T``; its rows
(`row_correct`) are what the claims pair.

Over seeds, a method's cell is ``mean ± std`` (sample standard deviation, n - 1; no spread for one seed).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.plan import Plan, PlannedRun, test_matches


@dataclass(frozen=True)
class TestedRun:
    """A run whose record has a test made with the plan's settings."""

    run: PlannedRun
    record: dict[str, Any]

    @property
    def accuracy(self) -> dict[str, float]:
        """Per-task test accuracy in [0, 1] (tasks of COMMONSENSE_COLUMNS present in the record)."""
        values = self.record["test"]["accuracy"]
        return {task: float(values[task]) for task in COMMONSENSE_COLUMNS if values.get(task) is not None}

    @property
    def average(self) -> float:
        values = list(self.accuracy.values())
        return sum(values) / len(values) if values else math.nan


def row_correct(run: TestedRun) -> dict[str, int] | None:
    """``{row id: 1 if right else 0}`` of a run whose record keeps its test rows (None for older records)."""
    rows = run.record["test"].get("rows") or {}
    if not rows.get("ids"):
        return None
    return {
        row_id: int(gold == predicted)
        for row_id, gold, predicted in zip(rows["ids"], rows["gold"], rows["predicted"], strict=True)
    }


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (NaN std for fewer than two values; NaN mean for none)."""
    finite = [value for value in values if value is not None and not math.isnan(value)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else math.nan


def tested(plan: Plan, records: dict[str, dict[str, Any]], phase: str) -> list[TestedRun]:
    """Runs of ``phase`` whose record has a test with the plan's test settings."""
    return [
        TestedRun(run, records[run.name])
        for run in plan.runs
        if phase in run.phases and test_matches(records.get(run.name), run.test_settings)
    ]


def finals_by_method(plan: Plan, records: dict[str, dict[str, Any]]) -> dict[str, dict[Any, TestedRun]]:
    """``{method: {seed: TestedRun}}`` of the final runs, methods in plan order."""
    result: dict[str, dict[Any, TestedRun]] = {}
    for run in plan.runs:
        if "final" in run.phases:
            result.setdefault(run.method, {})
    for item in tested(plan, records, "final"):
        result[item.run.method][item.run.seed] = item
    return result


def zero_shot(plan: Plan, records: dict[str, dict[str, Any]]) -> TestedRun | None:
    return next(iter(tested(plan, records, "zero_shot")), None)


def entropy_tested(plan: Plan, records: dict[str, dict[str, Any]]) -> dict[float, dict[Any, TestedRun]]:
    """``{lambda: {seed: TestedRun}}`` of the tested entropy-sweep runs."""
    result: dict[float, dict[Any, TestedRun]] = {}
    for item in tested(plan, records, "entropy"):
        result.setdefault(item.run.entropy_weight, {})[item.run.seed] = item
    return dict(sorted(result.items()))


def entropy_runs(plan: Plan, records: dict[str, dict[str, Any]]) -> dict[float, dict[Any, dict[str, Any]]]:
    """``{lambda: {seed: record}}`` of the entropy-sweep runs that are recorded (tested or not)."""
    result: dict[float, dict[Any, dict[str, Any]]] = {}
    for run in plan.runs:
        if "entropy" in run.phases and run.name in records:
            result.setdefault(run.entropy_weight, {})[run.seed] = records[run.name]
    return dict(sorted(result.items()))


def variants_tested(
    plan: Plan, records: dict[str, dict[str, Any]]
) -> dict[str, dict[str, dict[Any, TestedRun]]]:
    """``{variant: {method: {seed: TestedRun}}}`` of the tested variant runs, variants and methods in plan order."""
    result: dict[str, dict[str, dict[Any, TestedRun]]] = {}
    for run in plan.runs:
        if "variant" in run.phases:
            result.setdefault(run.variant, {}).setdefault(run.method, {})
    for item in tested(plan, records, "variant"):
        result[item.run.variant][item.run.method][item.run.seed] = item
    return result


def seed_cells(runs: dict[Any, TestedRun]) -> dict[str, tuple[float, float]]:
    """Per task and ``avg``: (mean, std) over the seeds of ``runs``, in [0, 1]."""
    cells = {
        task: mean_std([run.accuracy.get(task, math.nan) for run in runs.values()])
        for task in COMMONSENSE_COLUMNS
    }
    cells["avg"] = mean_std([run.average for run in runs.values()])
    return cells


def gate_value(record: dict[str, Any], key: str) -> float:
    """A record's final gate statistic: ``<key>`` of group ``all``, ``probe.<key>`` or ``token_variance.<key>``
    (`gatera_lab.diagnostics.token_variance`; NaN if absent).

    ``probe.prefill_mean`` / ``probe.decode_mean`` are the means over the held-out prompts' continuations
    (``prompts``) where the record has them, else those of the single probe prompt.
    """
    gates = record.get("gates") or {}
    if key.startswith("probe."):
        name = key.removeprefix("probe.")
        per_prompt = [value for value in (gates.get("prompts") or {}).get(name) or [] if value is not None]
        value = statistics.fmean(per_prompt) if per_prompt else (gates.get("probe") or {}).get(name)
    elif key.startswith("token_variance."):
        value = (gates.get("token_variance") or {}).get(key.removeprefix("token_variance."))
    else:
        value = ((gates.get("groups") or {}).get("all") or {}).get(key)
    return math.nan if value is None else float(value)
