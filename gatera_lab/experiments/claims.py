"""The papers' claims, checked on the runs' numbers: accuracy differences and gate behaviour.

An accuracy claim compares the average test accuracy of two settings on the same test rows (the same
seeded sample for every run), paired by seed and row: `gatera_lab.evaluation.paired_comparison` gives the
difference in points, its 95% interval (a paired t over seeds plus the shared rows' part, Welch-Satterthwaite
degrees of freedom: `gatera_lab.evaluation.difference_interval`), the minimum detectable difference and
McNemar's test per seed; the verdict is its `verdict` (which can also say "smaller than the paper's
effect"), followed by a caution when it rests on two seeds or fewer. A comparison that tests the project's
own hypothesis (a sweep variant) says *supported* or *refuted* instead of *reproduced* or *contradicted*. A
record without test rows cannot be paired: its claim is *not resolved*. A gate claim pairs two gate
statistics row by row within each run (the held-out rows' prompt and response means; each probe prompt's
prefill and decode means; one row's near-binary share at two entropy weights, same seed): the same rule, the
runs in the place of the seeds, gives its interval in gate units.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from gatera_lab.evaluation.difference_interval import spread_text
from gatera_lab.evaluation.paired_comparison import PairedDifference, paired_difference, verdict
from gatera_lab.experiments.seed_results import TestedRun, row_correct

HYPOTHESIS_WORDS = {"reproduced": "supported", "contradicted": "refuted"}


@dataclass(frozen=True)
class Comparison:
    """``A - B`` in points of average test accuracy, paired row by row over the seeds both sides have."""

    label: str
    paper: float | None
    seeds: tuple[Any, ...] = ()
    paired: PairedDifference | None = None  # None: some record keeps no test rows
    claimed_sign: float = 1.0  # the claim's direction when the papers give no number (A better than B)
    hypothesis: bool = False  # the project's own expectation (a variant), not a paper's claim

    @property
    def verdict(self) -> str:
        if not self.seeds:
            return "missing (no seed has both runs tested)"
        if self.paired is None:
            return "not resolved (a record keeps no test rows to pair)"
        result = verdict(self.paired, self.paper, self.claimed_sign)
        return HYPOTHESIS_WORDS.get(result, result) if self.hypothesis else result

    def sentence(self) -> str:
        paired = self.paired
        if paired is None:
            return f"{self.label}: {self.verdict}."
        if self.hypothesis:
            paper = f"hypothesis: {'positive' if self.claimed_sign > 0 else 'negative'}"
        elif self.paper is None:
            paper = "claimed: positive, no published number"
        else:
            paper = f"paper: {self.paper:+.2f}"
        tests = "; ".join(
            f"seed {seed}: {n10} vs {n01} rows right under one side only, McNemar p = {p:.3g}"
            for seed, (n10, n01, p) in zip(self.seeds, paired.mcnemar, strict=False)
        )
        return (
            f"{self.label} = {paired.difference:+.2f} points, 95% interval [{paired.low:+.2f}, {paired.high:+.2f}] "
            f"over {paired.seeds} seed(s) x {paired.rows} paired rows ({spread_text(paired, 2)})"
            f"{'; ' + tests if tests else ''}; {paper} → **{self.verdict}**.{caution(paired)}"
        )


def caution(paired: PairedDifference) -> str:
    """The sentence's closing caution over two seeds or fewer ("" from three on)."""
    return f" Caution: {paired.warning}." if paired.warning else ""


def common_seeds(groups: list[dict[Any, TestedRun]]) -> list[Any]:
    """The seeds every ``{seed: run}`` group has, in the first group's order."""
    return [seed for seed in (groups[0] if groups else {}) if all(seed in group for group in groups)]


def compare(
    label: str,
    first: list[dict[Any, TestedRun]],
    second: list[dict[Any, TestedRun]],
    paper: float | None,
) -> Comparison:
    """``mean(first) - mean(second)``, where each side averages over its method groups, paired by seed and row.

    ``first`` and ``second`` are lists of ``{seed: TestedRun}`` (e.g. the gated and the ungated method of
    every family); a seed counts when every group of both sides has it.
    """
    seeds = common_seeds([*first, *second])
    return Comparison(label, paper, tuple(seeds), _paired(first, second, seeds))


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
    (the runs take the seeds' place; values keep their unit)."""
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
            f"over {paired.seeds} run(s) x {paired.rows} paired rows ({spread_text(paired, 4)}){left_out} → "
            f"**{verdict(paired, None)}**.{caution(paired)}"
        )


def gate_claim(label: str, pairs: dict[str, tuple[list[float] | None, list[float] | None]]) -> GateClaim:
    """`GateClaim` of the per-row ``(larger, smaller)`` of each run (`row_values`); a run missing either side
    (no per-row statistics) is left out and counted."""
    complete = {name: pair for name, pair in pairs.items() if pair[0] is not None and pair[1] is not None}
    return GateClaim(label, complete, tuple(name for name in pairs if name not in complete))
