"""The results page's first section: the claims file's verdicts, and the fine-tuned-minus-baseline lines.

`claims` lists the claims file's comparisons (`claim_lines`), then fine-tuned minus zero-shot and minus the
majority-label baseline, the entropy claims with the near-binary share of each lambda, and the gate claims.
"""

from __future__ import annotations

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.claim_lines import comparison_lines, entropy_lines, gate_lines
from gatera_lab.experiments.report_data import (
    ReportData,
    num,
)
from gatera_lab.experiments.seed_results import entropy_tested, gate_value, mean_std, seed_cells


def claims(data: ReportData) -> list[str]:
    """The claims file's comparisons, the zero-shot and majority lines, entropy and gate claims."""
    lines = comparison_lines(data.claims_spec, data.finals)
    lines += zero_shot_claim(data)
    lines += majority_claim(data)
    lines += entropy_claims(data)
    lines += gate_lines(data.claims_spec, data.finals)
    return lines


def majority_claim(data: ReportData) -> list[str]:
    """Per method, the tasks where its mean test accuracy beats the majority-label baseline."""
    if data.majority is None or not any(data.finals.values()):
        return []
    parts = []
    for method, runs in data.finals.items():
        if not runs:
            continue
        cells = seed_cells(runs)
        above = [
            COMMONSENSE_COLUMNS[task]
            for task in COMMONSENSE_COLUMNS
            if cells[task][0] > data.majority[task] + 1e-4
        ]
        gain = 100 * (cells["avg"][0] - data.majority["avg"])
        parts.append(f"{method} {gain:+.2f} (above it on {', '.join(above) if above else 'no task'})")
    return [
        "Fine-tuned minus the majority-label baseline (always the test subset's most common label per "
        f"task; average {100 * data.majority['avg']:.2f}), average test accuracy in points, mean over "
        f"seeds: {'; '.join(parts)}."
    ]


def zero_shot_claim(data: ReportData) -> list[str]:
    if data.zero_shot is None:
        return []
    gains = [
        f"{method} {100 * (mean_std([run.average for run in runs.values()])[0] - data.zero_shot.average):+.2f}"
        for method, runs in data.finals.items()
        if runs
    ]
    if not gains:
        return []
    return [
        "Fine-tuned minus zero-shot, average test accuracy (points, mean over seeds; test-subset standard "
        f"error of the zero-shot average {100 * data.zero_shot.standard_error:.2f}): {', '.join(gains)}."
    ]


def entropy_claims(data: ReportData) -> list[str]:
    sweep = data.spec.entropy_sweep
    if sweep is None:
        return []
    lines = entropy_lines(data.claims_spec, sweep.method, entropy_tested(data.plan, data.records))
    near = {
        f"lambda {value:g}": [gate_value(record, "near_binary") for record in seeds.values()]
        for value, seeds in data.entropy.items()
    }
    if near:
        shares = "; ".join(f"{label}: {num(mean_std(values)[0])}" for label, values in near.items())
        lines.append(
            "Near-binary gates (share of gates < 0.1 or > 0.9 on held-out rows; the paper: the entropy "
            f"term makes gates near-binary): {shares}."
        )
    return lines
