"""The papers' claims, checked on the runs' numbers: accuracy differences and gate behaviour.

An accuracy claim compares the average test accuracy of two settings, seed by seed (points = percent):

    d_s = 100 (avg_A,s - avg_B,s),    d = mean_s d_s,    spread = std_s d_s  (sample std, n - 1)
    u = sqrt(spread^2 / n + se_A^2 + se_B^2)   (se: binomial standard error of an average on the test subset,
                                                the mean over seeds; the seed term is 0 for one seed)

and is called *reproduced* when d has the paper's sign and |d| > 2u, *contradicted* when it has the other
sign and |d| > 2u, and *not resolved at this scale* otherwise. When every run's record keeps its test rows
(the same seeded sample), the comparison is paired row by row instead: a bootstrap over seeds and rows
gives the 95% interval and the minimum detectable difference, McNemar's test each seed's p-value, and the
verdict is `gatera_lab.experiments.paired_statistics.verdict` (which can also say "smaller than the
paper's effect"). A gate claim states its numbers and in how many runs the claimed ordering holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gatera_lab.experiments.paired_statistics import PairedDifference, paired_difference, verdict
from gatera_lab.experiments.seed_results import TestedRun, gate_value, mean_std, row_correct


@dataclass(frozen=True)
class Comparison:
    """``A - B`` in points of average test accuracy, seed by seed, with the paper's difference and a verdict."""

    label: str
    paper: float | None
    per_seed: dict[Any, float] = field(default_factory=dict)
    standard_error: float = math.nan  # sqrt(se_A^2 + se_B^2), points
    claimed_sign: float = 1.0  # the claim's direction when the papers give no number (A better than B)
    paired: PairedDifference | None = None  # row-by-row statistics when the records keep their rows

    @property
    def mean(self) -> float:
        return mean_std(list(self.per_seed.values()))[0]

    @property
    def spread(self) -> float:
        """Sample std of the per-seed differences (NaN for one seed)."""
        return mean_std(list(self.per_seed.values()))[1]

    @property
    def uncertainty(self) -> float:
        seeds = len(self.per_seed)
        seed_term = 0.0 if seeds < 2 else self.spread**2 / seeds
        test_term = 0.0 if math.isnan(self.standard_error) else self.standard_error**2
        return math.sqrt(seed_term + test_term)

    @property
    def verdict(self) -> str:
        if not self.per_seed:
            return "missing (no seed has both runs tested)"
        if self.paired is not None:
            return verdict(self.paired, self.paper, self.claimed_sign)
        if abs(self.mean) <= 2 * self.uncertainty or self.mean == 0:
            return "not resolved at this scale (|difference| <= 2 standard errors)"
        claimed = self.claimed_sign if self.paper is None else self.paper
        if math.copysign(1, self.mean) == math.copysign(1, claimed):
            return "reproduced (the claimed direction, beyond 2 standard errors)"
        return "contradicted (the opposite direction, beyond 2 standard errors)"

    def sentence(self) -> str:
        if not self.per_seed:
            return f"{self.label}: {self.verdict}."
        if self.paired is not None:
            return self._paired_sentence(self.paired)
        seeds = ", ".join(f"{seed}: {value:+.2f}" for seed, value in self.per_seed.items())
        spread = "" if math.isnan(self.spread) else f" ± {self.spread:.2f}"
        paper = (
            "; claimed: positive, no published number"
            if self.paper is None
            else f"; paper: {self.paper:+.2f}"
        )
        single = " (one seed: no seed spread)" if len(self.per_seed) == 1 else ""
        return (
            f"{self.label} = {self.mean:+.2f}{spread} points over {len(self.per_seed)} seed(s){single} "
            f"(per seed {seeds}; test-subset standard error {self.standard_error:.2f}, "
            f"combined standard error {self.uncertainty:.2f}){paper} → {self.verdict}."
        )

    def _paired_sentence(self, paired: PairedDifference) -> str:
        paper = (
            "claimed: positive, no published number" if self.paper is None else f"paper: {self.paper:+.2f}"
        )
        tests = "; ".join(
            f"seed {seed}: {n10} vs {n01} rows right under one side only, McNemar p = {p:.3g}"
            for seed, (n10, n01, p) in zip(self.per_seed, paired.mcnemar, strict=False)
        )
        return (
            f"{self.label} = {paired.difference:+.2f} points, 95% interval [{paired.low:+.2f}, {paired.high:+.2f}] "
            f"over {paired.seeds} seed(s) x {paired.rows} paired rows (minimum detectable difference "
            f"{paired.minimum_detectable:.2f}){'; ' + tests if tests else ''}; {paper} → **{self.verdict}**."
        )


def compare(
    label: str,
    first: list[dict[Any, TestedRun]],
    second: list[dict[Any, TestedRun]],
    paper: float | None,
) -> Comparison:
    """``mean(first) - mean(second)`` per seed, where each side averages over its method groups.

    ``first`` and ``second`` are lists of ``{seed: TestedRun}`` (e.g. the gated and the ungated method of
    every family); a seed counts when every group of both sides has it.
    """
    groups = [*first, *second]
    seeds = [seed for seed in (groups[0] if groups else {}) if all(seed in group for group in groups)]
    per_seed, errors = {}, []
    for seed in seeds:
        a = [group[seed] for group in first]
        b = [group[seed] for group in second]
        per_seed[seed] = 100 * (
            sum(run.average for run in a) / len(a) - sum(run.average for run in b) / len(b)
        )
        variance_a = sum(run.standard_error**2 for run in a) / len(a) ** 2
        variance_b = sum(run.standard_error**2 for run in b) / len(b) ** 2
        errors.append(100 * math.sqrt(variance_a + variance_b))
    standard_error = sum(errors) / len(errors) if errors else math.nan
    return Comparison(label, paper, per_seed, standard_error, paired=_paired(first, second, seeds))


def _paired(
    first: list[dict[Any, TestedRun]], second: list[dict[Any, TestedRun]], seeds: list[Any]
) -> PairedDifference | None:
    """Row-by-row statistics over ``seeds`` when every run keeps its rows (each side: mean over its groups)."""
    if not seeds:
        return None
    tables = [[row_correct(group[seed]) for group in side] for side in (first, second) for seed in seeds]
    if any(table is None for side in tables for table in side):
        return None
    common = sorted(set.intersection(*(set(table) for side in tables for table in side)))
    if not common:
        return None

    def side_values(side: list[dict[Any, TestedRun]], seed: Any) -> list[float]:
        outcomes = [row_correct(group[seed]) for group in side]
        return [sum(table[row] for table in outcomes) / len(outcomes) for row in common]

    return paired_difference(
        [side_values(first, seed) for seed in seeds],
        [side_values(second, seed) for seed in seeds],
        [row.split("/")[0] for row in common],
    )


@dataclass(frozen=True)
class GateClaim:
    """A claimed ordering of gate values (``larger > smaller``), measured in several runs."""

    label: str
    differences: dict[str, float]  # run label -> larger - smaller (NaN entries are left out)

    def sentence(self) -> str:
        differences = {name: value for name, value in self.differences.items() if not math.isnan(value)}
        if not differences:
            return f"{self.label}: no gated run with gate statistics is recorded yet."
        holds = sum(value > 0 for value in differences.values())
        mean, spread = mean_std(list(differences.values()))
        values = ", ".join(f"{name}: {value:+.4f}" for name, value in differences.items())
        if math.isnan(spread):
            interval, verdict_text = " (one run: no interval)", "not resolved"
        else:
            half = T_975[min(len(differences) - 1, len(T_975)) - 1] * spread / math.sqrt(len(differences))
            low, high = mean - half, mean + half
            interval = f", 95% interval over runs [{low:+.4f}, {high:+.4f}]"
            verdict_text = "reproduced" if low > 0 else "contradicted" if high < 0 else "not resolved"
        return (
            f"{self.label}: holds in {holds} of {len(differences)} runs "
            f"(mean difference {mean:+.4f}{interval}; {values}) → **{verdict_text}**."
        )


T_975 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13, 2.12)
"""Student's t quantile 0.975 for 1..16 degrees of freedom (the last serves for more)."""


def gate_difference(record: dict[str, Any], larger: str, smaller: str) -> float:
    """``larger - smaller`` of a record's final gate statistics (`gate_value` keys; NaN if either is absent)."""
    return gate_value(record, larger) - gate_value(record, smaller)
