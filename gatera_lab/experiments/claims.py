"""The papers' claims, checked on the runs' numbers: accuracy differences and gate behaviour.

An accuracy claim compares the average test accuracy of two settings, seed by seed (points = percent):

    d_s = 100 (avg_A,s - avg_B,s),    d = mean_s d_s,    spread = std_s d_s  (sample std, n - 1)
    u = sqrt(spread^2 / n + se_A^2 + se_B^2)   (se: binomial standard error of an average on the test subset,
                                                the mean over seeds; the seed term is 0 for one seed)

and is called *reproduced* when d has the paper's sign and |d| > 2u, *contradicted* when it has the other
sign and |d| > 2u, and *not resolved at this scale* otherwise. When every run's record keeps its test rows
(the same seeded sample), the comparison is paired row by row instead: a bootstrap over seeds and rows
gives the 95% interval and the minimum detectable difference, McNemar's test each seed's p-value, and the
verdict is `gatera_lab.evaluation.paired_comparison.verdict` (which can also say "smaller than the
paper's effect"). A gate claim pairs two gate statistics row by row within each run (the held-out rows'
prompt and response means; each probe prompt's prefill and decode means; one row's near-binary share at two
entropy weights, same seed): the same bootstrap over runs and rows, in gate units, gives its interval.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from gatera_lab.evaluation.paired_comparison import PairedDifference, paired_difference, verdict
from gatera_lab.experiments.seed_results import TestedRun, mean_std, row_correct


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


def row_values(record: dict[str, Any], key: str) -> list[float] | None:
    """A record's per-row gate statistic ``<section>.<name>`` (``per_row.response_mean``, ``prompts.decode_mean``
    of `FinalGateProbe`); None when the record has none."""
    section, _, name = key.partition(".")
    values = ((record.get("gates") or {}).get(section) or {}).get(name)
    return None if values is None else [math.nan if value is None else float(value) for value in values]


def paired_rows(pairs: list[tuple[list[float], list[float]]]) -> PairedDifference | None:
    """``first - second`` row by row, one ``(first, second)`` pair per run, on the rows finite in every pair
    (the bootstrap resamples runs and rows; values keep their unit)."""
    lengths = {len(values) for pair in pairs for values in pair}
    if not pairs or len(lengths) != 1:
        return None
    keep = [
        row
        for row in range(lengths.pop())
        if all(math.isfinite(first[row]) and math.isfinite(second[row]) for first, second in pairs)
    ]
    if not keep:
        return None
    first = [[values[row] for row in keep] for values, _ in pairs]
    second = [[values[row] for row in keep] for _, values in pairs]
    return paired_difference(first, second, ["all"] * len(keep), scale=1.0)


@dataclass(frozen=True)
class GateClaim:
    """A claimed ordering of gate values (``larger > smaller``), paired row by row within each run."""

    label: str
    pairs: dict[str, tuple[list[float], list[float]]]  # run label -> (larger, smaller) per row
    left_out: tuple[str, ...] = ()  # runs without per-row gate statistics

    def sentence(self) -> str:
        paired = paired_rows(list(self.pairs.values()))
        left_out = (
            f" ({len(self.left_out)} run(s) without per-row statistics left out)" if self.left_out else ""
        )
        if paired is None:
            return f"{self.label}: no gated run with per-row gate statistics is recorded yet{left_out}."
        holds = sum(
            statistics.fmean(a - b for a, b in zip(*pair, strict=True) if math.isfinite(a - b)) > 0
            for pair in self.pairs.values()
        )
        return (
            f"{self.label}: holds in {holds} of {len(self.pairs)} runs; mean difference "
            f"{paired.difference:+.4f} (gate values, 0 to 1), 95% interval [{paired.low:+.4f}, {paired.high:+.4f}] "
            f"over {paired.seeds} run(s) x {paired.rows} paired rows (minimum detectable difference "
            f"{paired.minimum_detectable:.4f}){left_out} → **{verdict(paired, None)}**."
        )


def gate_claim(label: str, records: dict[str, dict[str, Any]], larger: str, smaller: str) -> GateClaim:
    """`GateClaim` of ``larger`` over ``smaller`` (`row_values` keys) in each of ``records`` (label -> record)."""
    pairs, left_out = {}, []
    for name, record in records.items():
        values = (row_values(record, larger), row_values(record, smaller))
        if values[0] is None or values[1] is None:
            left_out.append(name)
        else:
            pairs[name] = values
    return GateClaim(label, pairs, tuple(left_out))
