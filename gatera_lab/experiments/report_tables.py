"""The results page's tables: test accuracy, published rows, learning-rate grids, entropy sweep, gates,
variants."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.gate_trace import trace_point
from gatera_lab.experiments.report_data import HEADER, ReportData, cell, num, pct, table
from gatera_lab.experiments.seed_results import gate_value, mean_std, seed_cells

TASKS = list(COMMONSENSE_COLUMNS)
ENTROPY_KEYS = (
    "mean",
    "near_binary",
    "prompt_mean",
    "response_mean",
    "probe.prefill_mean",
    "probe.decode_mean",
    "token_variance.token_share",
)
GATE_COLUMNS = ("gate mean", "near-binary", "prompt", "response", "prefill", "decode", "token share")
GATE_KEYS = ("mean", "near_binary", "entropy", *ENTROPY_KEYS[2:])
TRACE_START = ("mean", "near_binary")  # of the gate trace's first point: the gates before any update


def accuracy_table(data: ReportData) -> str:
    """Zero-shot, majority-label and each method's ``mean ± std`` over seeds, per task and on average."""
    dashes = ["-"] * (len(TASKS) + 1)
    if data.zero_shot is not None:
        accuracy = data.zero_shot.accuracy
        zero = [*(pct(accuracy.get(task)) for task in TASKS), pct(data.zero_shot.average), "-"]
        rows = [["zero-shot (base model)", *zero]]
    else:
        rows = [["zero-shot (base model)", *dashes, "missing"]]
    if data.majority is not None:
        rows.append(["majority label (baseline)", *(pct(data.majority[t]) for t in [*TASKS, "avg"]), "-"])
    for method, runs in data.finals.items():
        cells = seed_cells(runs) if runs else {}
        seeds = f"{len(runs)} ({', '.join(str(seed) for seed in runs)})" if runs else "0"
        rows.append([method, *([cell(*cells[t]) for t in [*TASKS, "avg"]] if runs else dashes), seeds])
    return table([*HEADER, "seeds"], rows)


def published_table(data: ReportData) -> str:
    rows = [
        [
            name,
            *(num(values.get(task), 1) if task in values else "-" for task in TASKS),
            num(values["avg"], 2),
        ]
        for name, values in data.claims_spec.published.rows.items()
    ]
    return table(HEADER, rows)


def learning_rate_tables(data: ReportData) -> str:
    """Per family: the validation accuracy of each method at each rate of the grid, and the choice."""
    parts = []
    for family in data.spec.family_list:
        choice = data.plan.choices.get(family.name)
        grid: dict[float, dict[str, float]] = {}
        for run in data.plan.runs:
            if "lr_search" in run.phases and run.family == family.name and run.name in data.records:
                accuracy = ((data.records[run.name].get("validation") or {}).get("accuracy") or {}).get("avg")
                grid.setdefault(run.learning_rate, {})[run.method] = (
                    math.nan if accuracy is None else accuracy
                )
        rows = []
        for rate in family.learning_rates:
            values = grid.get(rate, {})
            mean = mean_std([values.get(method, math.nan) for method in family.methods])[0]
            chosen = "**chosen**" if choice and choice.learning_rate == rate else ""
            rows.append(
                [f"{rate:g}", *(pct(values.get(method)) for method in family.methods), pct(mean), chosen]
            )
        header = ["learning rate", *(f"{method} val acc" for method in family.methods), "mean", ""]
        reason = choice.reason if choice else "not chosen yet: the search is incomplete."
        parts.append(
            f"**{family.name}** (search seed {data.spec.search_seed}):\n\n{table(header, rows)}\n{reason}\n"
        )
    return "\n".join(parts)


def entropy_table(data: ReportData) -> str:
    rows = []
    for value, seeds in data.entropy.items():
        for seed, record in seeds.items():
            accuracy = (record.get("test") or {}).get("accuracy") or {}
            tasks = [accuracy[task] for task in TASKS if accuracy.get(task) is not None]
            validation = ((record.get("validation") or {}).get("accuracy") or {}).get("avg")
            gates = [num(gate_value(record, key)) for key in ENTROPY_KEYS]
            rows.append(
                [
                    f"{value:g}",
                    str(seed),
                    pct(validation),
                    pct(sum(tasks) / len(tasks) if tasks else None),
                    *gates,
                ]
            )
    header = ["lambda", "seed", "val acc", "test avg", *GATE_COLUMNS]
    return table(header, rows) if rows else "No entropy-sweep run is recorded yet.\n"


def _mean_cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    return num(mean) + ("" if math.isnan(std) else f" ± {num(std)}")


def gate_table(data: ReportData) -> str:
    """Per gated final method: the gates at step 0 (the fit's gate trace) and at the end (held-out rows)."""
    rows = []
    for method, runs in data.finals.items():
        records = [run.record for run in runs.values() if run.record.get("gates")]
        if records:
            start = [_mean_cell([trace_point(record, key, 0) for record in records]) for key in TRACE_START]
            end = [_mean_cell([gate_value(record, key) for record in records]) for key in GATE_KEYS]
            rows.append([method, str(len(records)), *start, *end])
    header = ["method", "runs", "mean, step 0", "near-binary, step 0", "gate mean", "near-binary"]
    header += ["entropy (nats)", *GATE_COLUMNS[2:]]
    return table(header, rows) if rows else "No gated final run is recorded yet.\n"


def _beside(value: Callable[[dict[str, Any]], float], changed: list[dict], base: list[dict]) -> str:
    """``mean over changed (mean over base)`` of a record's ``value``."""
    return f"{num(mean_std(list(map(value, changed)))[0])} ({num(mean_std(list(map(value, base)))[0])})"


def variant_table(data: ReportData) -> str:
    """Per variant and method: its tested runs against the same method's finals of the same seeds, and its gates
    at step 0 and at the end (mean over the variant's seeds; the finals' in brackets)."""
    rows = []
    for name, methods in data.variants.items():
        for method, runs in methods.items():
            if not runs:
                continue
            finals = {seed: run for seed, run in data.finals.get(method, {}).items() if seed in runs}
            changed = [run.record for run in runs.values()]
            base = [run.record for run in finals.values()]
            rows.append(
                [
                    name,
                    method,
                    ", ".join(str(seed) for seed in runs),
                    cell(*mean_std([run.average for run in runs.values()])),
                    cell(*mean_std([run.average for run in finals.values()])) if finals else "-",
                    _beside(lambda record: trace_point(record, "mean", 0), changed, base),
                    _beside(lambda record: gate_value(record, "mean"), changed, base),
                    _beside(lambda record: gate_value(record, "near_binary"), changed, base),
                ]
            )
    if not rows:
        return "No variant run is tested yet.\n"
    header = ["variant", "method", "seeds", "test avg", "final, same seeds", "gate mean, step 0"]
    header += ["gate mean, end", "near-binary, end"]
    return table(header, rows)


def gate_skip_table(data: ReportData) -> str:
    """Per gated final run with a gate-skip measurement: each threshold's accuracy, change, skipped share, time."""
    rows, sample = [], None
    for method, runs in data.finals.items():
        for seed, run in runs.items():
            measured = run.record.get("gate_skip")
            if not measured:
                continue
            sample = measured["settings"]
            for result in measured["results"]:
                threshold = result["threshold"]
                rows.append(
                    [
                        method,
                        str(seed),
                        "off" if threshold is None else f"{threshold:g}",
                        pct(result["accuracy"].get("avg"), 2),
                        f"{result['change_points']:+.2f}",
                        f"{100 * result['skipped_fraction']:.1f}%",
                        f"{result['seconds']:.0f}",
                    ]
                )
    if not rows:
        return "No gate-skip measurement is recorded yet.\n"
    header = ["method", "seed", "threshold", "avg acc (%)", "change (points)", "pairs skipped", "seconds"]
    return (
        f"Each run tested on a seeded sample of {sample['rows_per_task']} test rows per task (sample seed "
        f"{sample['sample_seed']}), once without skipping and once per threshold tau: every (layer, token) pair "
        "whose gate is below tau gets the base layer's output exactly (`gatera_lab/adapters/gate_skip.py`). Seconds are "
        "this machine's for the whole sample.\n\n" + table(header, rows)
    )
