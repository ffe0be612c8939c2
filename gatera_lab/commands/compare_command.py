"""``gatera-lab compare``: two tested settings compared row by row, with an interval and a verdict.

    gatera-lab compare --first runs/my_method/test --second runs/lora/test
    gatera-lab compare --first A_seed1 A_seed2 A_seed3 --second B_seed1 B_seed2 B_seed3 --paper 0.81

Each argument is a ``test_rows.jsonl`` (written by ``gatera-lab test`` beside its results: one line per
scored row with its id, task, gold answer and predictions) or a folder holding exactly one. The i-th run of
``--first`` is paired with the i-th of ``--second`` (the same seed, say); rows are joined by their id, on
the rows that every run scored. The statistics are `gatera_lab.evaluation.paired_comparison`'s, the rule
the results page uses: the difference of mean accuracy in points (first minus second), a 95% interval
``d -/+ t se`` whose standard error adds a paired part over the pairs (``pairs - 1`` degrees of freedom) and
the shared rows' part (within tasks), with Welch-Satterthwaite degrees of freedom (printed), the minimum
detectable difference of this design (``(t_0.975 + t_0.80) se``), and McNemar's exact test per pair. The
verdict says which side the interval lies on; with ``--paper D`` (a published difference in points) it can
also say that the effect here is smaller than the paper's. Over one or two pairs it carries a caution.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from gatera_lab.commands.command_entry import run_command, write_output
from gatera_lab.datamodules.record_files import read_jsonl
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.difference_interval import spread_text
from gatera_lab.evaluation.paired_comparison import PairedDifference, paired_difference, verdict

ROWS_FILE = "test_rows.jsonl"
METRICS = ("predicted", "acc", "acc_norm")
VERDICTS = {  # verdict -> what it means here (paired_comparison.verdict; "the claim": first > second, or --paper)
    "reproduced": "the interval lies on the claim's side of 0",
    "contradicted": "the interval lies on the other side of 0",
    "smaller than the paper's effect": "the interval contains 0 and lies below the paper's difference",
    "not resolved": "the interval contains 0: no difference this design can detect",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatera-lab compare", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--first", nargs="+", required=True, metavar="RUN", help="test_rows.jsonl files or folders (A)")
    add("--second", nargs="+", required=True, metavar="RUN", help="the same number, paired in order (B)")
    add(
        "--metric",
        choices=METRICS,
        default="predicted",
        help="predicted: each task's reported metric (default); acc or acc_norm: that one on every task",
    )
    add("--paper", type=float, default=None, help="a published difference A - B in points, for the verdict")
    add("--out", default=None, help="also write the comparison as JSON here")
    return parser


def rows_file(path: str) -> Path:
    """``path`` itself, or the one ``test_rows.jsonl`` under the folder ``path``."""
    given = Path(path)
    if given.is_file():
        return given
    if not given.is_dir():
        raise ConfigError(f"{path}: no such file or folder")
    found = sorted(given.rglob(ROWS_FILE))
    if len(found) != 1:
        listed = ", ".join(map(str, found[:4])) or "none"
        raise ConfigError(
            f"{path}: expected one {ROWS_FILE} in the folder, found {len(found)} ({listed}); name the file"
        )
    return found[0]


def read_outcomes(path: Path, metric: str) -> dict[str, tuple[str, int]]:
    """``{row id: (task, 1 if right else 0)}`` of one run's rows under ``metric``."""
    outcomes = {}
    rows, places = read_jsonl(path)  # the project's JSONL reader: errors name the file and line
    for row, place in zip(rows, places, strict=True):
        try:
            row_id, task, gold, answer = row["row_id"], row["task"], row["gold"], row[metric]
        except (KeyError, TypeError) as error:
            raise ConfigError(f"{place}: not a row outcome with '{metric}' ({error})") from None
        if not row_id:
            raise ConfigError(f"{place}: the row has no row_id, so it cannot be paired")
        outcomes[row_id] = (task, int(answer == gold))
    if not outcomes:
        raise ConfigError(f"{path}: no rows")
    return outcomes


def compare_runs(
    first: list[str], second: list[str], metric: str = "predicted"
) -> tuple[PairedDifference, dict[str, Any]]:
    """The paired difference of ``first`` minus ``second`` and the facts behind it (rows, per-task means)."""
    if len(first) != len(second):
        raise ConfigError(
            f"options --first and --second must name as many runs each, got {len(first)} and {len(second)}"
        )
    files = [rows_file(path) for path in [*first, *second]]
    runs = [read_outcomes(path, metric) for path in files]
    common = sorted(set.intersection(*(set(run) for run in runs)))
    if not common:
        raise ConfigError("the runs share no row id: they were not tested on the same rows")
    tasks = [runs[0][row_id][0] for row_id in common]
    values = [[run[row_id][1] for row_id in common] for run in runs]  # [run][row]
    pairs = len(first)
    result = paired_difference(values[:pairs], values[pairs:], tasks)
    per_task = {}
    for task in dict.fromkeys(tasks):
        indices = [index for index, name in enumerate(tasks) if name == task]
        per_task[task] = [
            100 * sum(run[index] for run in side for index in indices) / (len(side) * len(indices))
            for side in (values[:pairs], values[pairs:])
        ]
    facts = {
        "files": {"first": list(map(str, files[:pairs])), "second": list(map(str, files[pairs:]))},
        "rows": len(common),
        "rows_left_out": len(set().union(*runs)) - len(common),  # row ids some run did not score
        "metric": metric,
        "per_task": per_task,
    }
    return result, facts


def describe(result: PairedDifference, facts: dict[str, Any], paper: float | None) -> str:
    """The comparison in words and a per-task table."""
    lines = ["| task | first (%) | second (%) | difference |", "|---|---:|---:|---:|"]
    for task, (a, b) in facts["per_task"].items():
        lines.append(f"| {task} | {a:.2f} | {b:.2f} | {a - b:+.2f} |")
    left_out = (
        f" ({facts['rows_left_out']} row(s) not scored by every run left out)"
        if facts["rows_left_out"]
        else ""
    )
    lines.append(
        f"\nfirst minus second: {result.difference:+.2f} points, 95% interval [{result.low:+.2f}, "
        f"{result.high:+.2f}] over {result.seeds} pair(s) x {result.rows} rows{left_out} ({spread_text(result, 2)})"
    )
    for index, (n10, n01, p) in enumerate(result.mcnemar, start=1):
        lines.append(
            f"pair {index}: {n10} rows right under first only, {n01} under second only; McNemar p = {p:.3g}"
        )
    outcome = verdict(result, paper)
    claim = "first better than second" if paper is None else f"first minus second = {paper:+.2f} (--paper)"
    lines.append(f"verdict on the claim {claim}: {outcome} ({VERDICTS[outcome]})")
    if result.warning:
        lines.append(f"caution: {result.warning}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    """Compare, print, and write ``--out`` when asked."""
    result, facts = compare_runs(args.first, args.second, args.metric)
    print(describe(result, facts, args.paper))
    if args.out:
        nu = result.degrees_of_freedom
        payload = {
            **facts,
            "difference": result.difference,
            "interval": [result.low, result.high],
            "standard_error": result.standard_error,
            "seed_standard_error": result.seed_error,
            "row_standard_error": result.row_error,
            "degrees_of_freedom": None if math.isinf(nu) else nu,  # null: no limit (rows only, no spread)
            "t_multiplier": result.multiplier,
            "minimum_detectable": result.minimum_detectable,
            "mcnemar": [list(test) for test in result.mcnemar],
            "paper": args.paper,
            "verdict": verdict(result, args.paper),
            "caution": result.warning or None,
        }
        write_output("--out", args.out, json.dumps(payload, indent=2) + "\n")


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab compare``; returns the exit status (2 on a bad option or file)."""
    return run_command("compare", build_parser(), run, argv)
