"""The claims of a claims file (`ClaimsSpec`) evaluated on the tested runs: one sentence each.

A comparison is shown when at least one of its pairs has both methods in the sweep's final runs; an
entropy claim for each positive lambda tested next to lambda 0; a gate claim always (it says when no gated
run is recorded). The statistics and verdicts are those of `claims`.
"""

from __future__ import annotations

from typing import Any

from gatera_lab.experiments.claims import GateClaim, compare, gate_difference
from gatera_lab.experiments.claims_file import ClaimsSpec
from gatera_lab.experiments.seed_results import TestedRun

Finals = dict[str, dict[Any, TestedRun]]  # method -> seed -> tested final run


def comparison_lines(claims: ClaimsSpec, finals: Finals) -> list[str]:
    """``A minus B`` of every comparison claim, pooled over its pairs present in ``finals``."""
    lines = []
    for claim in claims.comparisons:
        present = [(a, b) for a, b in claim.pairs if a in finals and b in finals]
        if present:
            first = [finals[a] for a, _ in present]
            second = [finals[b] for _, b in present]
            lines.append(compare(claim.label, first, second, claim.paper).sentence())
    return lines


def entropy_lines(claims: ClaimsSpec, method: str, by_lambda: dict[float, dict[Any, TestedRun]]) -> list[str]:
    """Each positive lambda's runs minus the lambda-0 runs of the entropy sweep's ``method``."""
    zero = by_lambda.get(0.0)
    if claims.entropy is None or not zero:
        return []
    return [
        compare(
            claims.entropy.label.format(method=method, value=f"{value:g}"),
            [runs],
            [zero],
            claims.entropy.paper,
        ).sentence()
        for value, runs in by_lambda.items()
        if value > 0
    ]


def gate_lines(claims: ClaimsSpec, finals: Finals) -> list[str]:
    """Each gate claim over the gated final runs that have gate statistics."""
    lines = []
    for spec in claims.gates:
        differences = {
            f"{method} seed {seed}": gate_difference(run.record, spec.larger, spec.smaller)
            for method, runs in finals.items()
            for seed, run in runs.items()
            if run.record.get("gates")
        }
        lines.append(GateClaim(spec.label, differences).sentence())
    return lines
