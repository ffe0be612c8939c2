"""The results page's first section: the claims file's claims evaluated on the tested runs, one line each.

The claims file's comparisons (shown when at least one pair has both methods among the final runs), then
fine-tuned minus zero-shot and minus the majority-label baseline, the entropy claims (each positive lambda
against lambda 0) with the near-binary share of each lambda, the variant claims (a variant's runs against
the finals, the project's own hypotheses), and the gate claims (always: one says when no
gated run is recorded). The statistics and verdicts are those of `claims`.

`claim_groups` keeps them as objects by group (a `Comparison`, a `GateClaim` or a plain sentence), so the
page's lines (`claim_lines`) and its picture of the intervals (`report_forest`) come from one computation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.claims import Comparison, GateClaim, compare, gate_claim, row_values
from gatera_lab.experiments.claims_file import ClaimsSpec
from gatera_lab.experiments.report_data import Finals, ReportData, num
from gatera_lab.experiments.seed_results import (
    TestedRun,
    entropy_tested,
    gate_value,
    mean_std,
    seed_cells,
)

NEAR_BINARY = "per_row.near_binary"
Claim = Comparison | GateClaim | str


def claim_groups(data: ReportData) -> dict[str, list[Claim]]:
    """The claims by group, in the page's order: ``paper`` (the claims file's comparisons), ``zero_shot``,
    ``majority``, ``entropy``, ``variants`` and ``gates``."""
    return {
        "paper": comparison_claims(data.claims_spec, data.finals),
        "zero_shot": zero_shot_claims(data),
        "majority": majority_claim(data),
        "entropy": entropy_claims(data),
        "variants": variant_claims(data),
        "gates": gate_claims(data.claims_spec, data.finals),
    }


def sentence(claim: Claim) -> str:
    """The page's line of one claim."""
    return claim if isinstance(claim, str) else claim.sentence()


def claim_lines(groups: dict[str, list[Claim]]) -> list[str]:
    """Every claim's line, group after group."""
    return [sentence(claim) for group in groups.values() for claim in group]


Sides = tuple[list[dict[Any, TestedRun]], list[dict[Any, TestedRun]]]


def present_sides(pairs: list[tuple[str, str]], first: Finals, second: Finals) -> Sides | None:
    """The ``{seed: run}`` groups of each side over the pairs ``[A, B]`` with ``A`` in ``first`` and ``B`` in
    ``second``; None when no pair is present."""
    present = [(a, b) for a, b in pairs if a in first and b in second]
    if not present:
        return None
    return [first[a] for a, _ in present], [second[b] for _, b in present]


def comparison_claims(claims: ClaimsSpec, finals: Finals) -> list[Comparison]:
    """``A minus B`` of every comparison claim, pooled over its pairs present in ``finals``."""
    comparisons = []
    for claim in claims.comparisons:
        sides = present_sides(claim.pairs, finals, finals)
        if sides:
            comparisons.append(compare(claim.label, *sides, claim.paper))
    return comparisons


def variant_claims(data: ReportData) -> list[Comparison]:
    """Each variant claim: the variant's runs of ``A`` minus the final runs of ``B``, paired by seed and row
    over the pairs whose variant method is in the sweep (*missing* until both sides have a tested seed)."""
    comparisons = []
    for claim in data.claims_spec.variants:
        runs = data.variants.get(claim.variant)
        if runs is None:
            continue  # the sweep file has no such variant
        sides = present_sides(claim.pairs, runs, data.finals)
        if sides:
            sign = 1.0 if claim.hypothesis == "positive" else -1.0
            comparison = compare(claim.label, *sides, None)
            comparisons.append(replace(comparison, hypothesis=True, claimed_sign=sign))
    return comparisons


def gate_claims(claims: ClaimsSpec, finals: Finals) -> list[GateClaim]:
    """Each gate claim over the gated final runs that have gate statistics, paired row by row."""
    records = {
        f"{method} seed {seed}": run.record
        for method, runs in finals.items()
        for seed, run in runs.items()
        if run.record.get("gates")
    }
    return [
        gate_claim(
            spec.label,
            {
                name: (row_values(record, spec.larger), row_values(record, spec.smaller))
                for name, record in records.items()
            },
        )
        for spec in claims.gates
    ]


def majority_claim(data: ReportData) -> list[str]:
    """Per method, the tasks where its mean test accuracy beats the majority-label baseline."""
    if data.majority is None or not any(data.finals.values()):
        return []
    parts = []
    for method, runs in data.finals.items():
        if runs:
            cells = seed_cells(runs)
            above = [
                name
                for task, name in COMMONSENSE_COLUMNS.items()
                if cells[task][0] > data.majority[task] + 1e-4
            ]
            gain = 100 * (cells["avg"][0] - data.majority["avg"])
            parts.append(f"{method} {gain:+.2f} (above it on {', '.join(above) if above else 'no task'})")
    return [
        "Fine-tuned minus the majority-label baseline (always the test subset's most common label per "
        f"task; average {100 * data.majority['avg']:.2f}), average test accuracy in points, mean over "
        f"seeds: {'; '.join(parts)}."
    ]


def zero_shot_claims(data: ReportData) -> list[Comparison]:
    """Each fine-tuned method, and all of them pooled, against the zero-shot run on the same rows."""
    zero = data.zero_shot
    finals = {method: runs for method, runs in data.finals.items() if runs}
    if zero is None or not finals:
        return []
    against = [{seed: zero for seed in runs} for runs in finals.values()]
    comparisons = [
        compare(f"{method} minus zero-shot", [runs], [baseline], None)
        for (method, runs), baseline in zip(finals.items(), against, strict=True)
    ]
    if len(finals) > 1:
        label = "fine-tuned (mean of the methods) minus zero-shot"
        comparisons.append(compare(label, list(finals.values()), against, None))
    return comparisons


def entropy_claims(data: ReportData) -> list[Claim]:
    sweep, claim = data.spec.entropy_sweep, data.claims_spec.entropy
    if sweep is None:
        return []
    by_lambda = entropy_tested(data.plan, data.records)
    zero = by_lambda.get(0.0)
    lines: list[Claim] = []
    if claim is not None and zero:
        for value, runs in by_lambda.items():
            if value > 0:
                label = claim.label.format(method=sweep.method, value=f"{value:g}")
                lines.append(compare(label, [runs], [zero], claim.paper))
    zero_gates = data.entropy.get(0.0, {})
    for value, seeds in data.entropy.items():
        pairs = {
            f"seed {seed}": (row_values(record, NEAR_BINARY), row_values(zero_gates[seed], NEAR_BINARY))
            for seed, record in seeds.items()
            if value > 0 and seed in zero_gates
        }
        if pairs:
            label = f"Near-binary share of gates (< 0.1 or > 0.9), lambda {value:g} minus lambda 0, per held-out row"
            lines.append(gate_claim(label, pairs))
    shares = "; ".join(
        f"lambda {value:g}: {num(mean_std([gate_value(record, 'near_binary') for record in seeds.values()])[0])}"
        for value, seeds in data.entropy.items()
    )
    if shares:
        lines.append(
            "Near-binary gates (share of gates < 0.1 or > 0.9 on held-out rows; the paper: the entropy "
            f"term makes gates near-binary): {shares}."
        )
    return lines
