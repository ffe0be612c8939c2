"""The results page's tables: test accuracy, published rows, learning-rate grids, entropy sweep, gates."""

from __future__ import annotations

import math

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.report_data import (
    HEADER,
    ReportData,
    cell,
    num,
    pct,
    table,
)
from gatera_lab.experiments.seed_results import gate_value, mean_std, seed_cells


def accuracy_table(data: ReportData) -> str:
    rows = []
    if data.zero_shot is not None:
        accuracy = data.zero_shot.accuracy
        rows.append(
            [
                "zero-shot (base model)",
                *[pct(accuracy.get(task)) for task in COMMONSENSE_COLUMNS],
                pct(data.zero_shot.average),
                "-",
            ]
        )
    else:
        rows.append(["zero-shot (base model)", *["-"] * (len(COMMONSENSE_COLUMNS) + 1), "missing"])
    if data.majority is not None:
        shares = [pct(data.majority[task]) for task in COMMONSENSE_COLUMNS]
        rows.append(["majority label (baseline)", *shares, pct(data.majority["avg"]), "-"])
    for method, runs in data.finals.items():
        if not runs:
            rows.append([method, *["-"] * (len(COMMONSENSE_COLUMNS) + 1), "0"])
            continue
        cells = seed_cells(runs)
        row = [cell(*cells[task]) for task in COMMONSENSE_COLUMNS]
        seeds = ", ".join(str(seed) for seed in runs)
        rows.append([method, *row, cell(*cells["avg"]), f"{len(runs)} ({seeds})"])
    return table([*HEADER, "seeds"], rows)


def published_table(data: ReportData) -> str:
    rows = [
        [
            name,
            *[num(values.get(task), 1) if task in values else "-" for task in COMMONSENSE_COLUMNS],
            num(values["avg"], 2),
        ]
        for name, values in data.claims_spec.published.rows.items()
    ]
    return table(HEADER, rows)


def learning_rate_tables(data: ReportData) -> str:
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
                [
                    f"{rate:g}",
                    *[pct(values.get(method)) for method in family.methods],
                    pct(mean),
                    chosen,
                ]
            )
        header = ["learning rate", *[f"{method} val acc" for method in family.methods], "mean", ""]
        reason = choice.reason if choice else "not chosen yet: the search is incomplete."
        parts.append(
            f"**{family.name}** (search seed {data.spec.search_seed}):\n\n{table(header, rows)}\n{reason}\n"
        )
    return "\n".join(parts)


def entropy_table(data: ReportData) -> str:
    rows = []
    for value, seeds in data.entropy.items():
        for seed, record in seeds.items():
            test = record.get("test") or {}
            accuracy = test.get("accuracy") or {}
            tasks = [accuracy[task] for task in COMMONSENSE_COLUMNS if accuracy.get(task) is not None]
            validation = ((record.get("validation") or {}).get("accuracy") or {}).get("avg")
            rows.append(
                [
                    f"{value:g}",
                    str(seed),
                    pct(validation),
                    pct(sum(tasks) / len(tasks) if tasks else None),
                    *[
                        num(gate_value(record, key))
                        for key in (
                            "mean",
                            "near_binary",
                            "prompt_mean",
                            "response_mean",
                            "probe.prefill_mean",
                            "probe.decode_mean",
                        )
                    ],
                ]
            )
    header = [
        "lambda",
        "seed",
        "val acc",
        "test avg",
        "gate mean",
        "near-binary",
        "prompt",
        "response",
        "prefill",
        "decode",
    ]
    return table(header, rows) if rows else "No entropy-sweep run is recorded yet.\n"


def gate_table(data: ReportData) -> str:
    rows = []
    keys = (
        "mean",
        "near_binary",
        "entropy",
        "prompt_mean",
        "response_mean",
        "probe.prefill_mean",
        "probe.decode_mean",
    )
    for method, runs in data.finals.items():
        records = [run.record for run in runs.values() if run.record.get("gates")]
        if records:
            cells = []
            for key in keys:
                mean, std = mean_std([gate_value(record, key) for record in records])
                cells.append(num(mean) + ("" if math.isnan(std) else f" ± {num(std)}"))
            rows.append([method, str(len(records)), *cells])
    header = [
        "method",
        "runs",
        "gate mean",
        "near-binary",
        "entropy (nats)",
        "prompt",
        "response",
        "prefill",
        "decode",
    ]
    return table(header, rows) if rows else "No gated final run is recorded yet.\n"
