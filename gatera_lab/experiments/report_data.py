"""What every section of the results page reads: the sweep, plan, records and claims, grouped once; and the
page's number and table formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.claims_file import ClaimsSpec
from gatera_lab.experiments.plan import Plan
from gatera_lab.experiments.seed_results import (
    TestedRun,
    entropy_runs,
    finals_by_method,
    variants_tested,
    zero_shot,
)
from gatera_lab.experiments.sweep_file import SweepSpec

HEADER = ["Model", *COMMONSENSE_COLUMNS.values(), "Avg"]
Finals = dict[str, dict[Any, TestedRun]]  # method -> seed -> tested final run


@dataclass(frozen=True)
class ReportData:
    """The inputs of the page and the groups of runs the sections share (see `report_data`)."""

    spec: SweepSpec
    plan: Plan
    records: dict[str, dict[str, Any]]
    prefix: str  # of the pictures' file names
    majority: dict[str, float] | None
    claims_spec: ClaimsSpec
    finals: Finals = field(default_factory=dict)
    zero_shot: TestedRun | None = None
    entropy: dict[float, dict[Any, dict[str, Any]]] = field(default_factory=dict)  # lambda -> seed -> record
    variants: dict[str, Finals] = field(default_factory=dict)  # variant -> method -> seed -> tested run
    config: dict[str, Any] = field(default_factory=dict)  # the first training run's: the shared budget


def report_data(
    spec: SweepSpec,
    plan: Plan,
    records: dict[str, dict[str, Any]],
    prefix: str,
    majority: dict[str, float] | None,
    claims: ClaimsSpec,
) -> ReportData:
    template = plan.first_training_run() or (plan.runs[0] if plan.runs else None)
    return ReportData(
        spec,
        plan,
        records,
        prefix,
        majority,
        claims,
        finals=finals_by_method(plan, records),
        zero_shot=zero_shot(plan, records),
        entropy=entropy_runs(plan, records),
        variants=variants_tested(plan, records),
        config=template.resolved if template else {},
    )


def plan_config(data: ReportData, method: str) -> dict[str, Any]:
    """The resolved config of ``method``'s final run, else of any of its planned runs (the search)."""
    runs = [run for run in data.plan.runs if run.method == method]
    run = next((run for run in runs if "final" in run.phases), runs[0] if runs else None)
    return run.resolved if run else {}


def recorded(data: ReportData) -> list[dict[str, Any]]:
    """The records of the plan's runs."""
    names = {run.name for run in data.plan.runs}
    return [record for name, record in data.records.items() if name in names]


def pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}"


def cell(mean: float, std: float) -> str:
    return pct(mean) if math.isnan(std) else f"{pct(mean)} ± {pct(std)}"


def num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"
