"""``gatera-lab report``: rebuild the results page of a sweep from its records.

    gatera-lab report --records results/records --out docs/results.md [--sweep configs/sweeps/reproduction.yaml]

The page is written atomically; its pictures go next to it as ``<out stem>_*.png`` (each atomically). The
sweep file gives the plan, so the page can list the runs still missing; it defaults to the sweep file named
in the records, else ``configs/sweeps/reproduction.yaml``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from gatera_lab.diagnostics.plotting import save_png
from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.experiments.claims_file import load_claims
from gatera_lab.experiments.majority_baseline import majority_label_accuracy
from gatera_lab.experiments.plan import build_plan
from gatera_lab.experiments.records import load_records
from gatera_lab.experiments.report_markdown import build_report
from gatera_lab.experiments.sweep_file import load_sweep
from gatera_lab.local_cache import write_text_atomic

DEFAULT_SWEEP = "configs/sweeps/reproduction.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatera-lab report", description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="results/records", help="the records folder")
    parser.add_argument("--out", default="docs/results.md", help="the Markdown page to write")
    parser.add_argument("--sweep", default=None, help="the sweep file (default: the records' own)")
    return parser


def sweep_file(records: dict, requested: str | None) -> str:
    if requested:
        return requested
    named = sorted({(record.get("sweep") or {}).get("file") for record in records.values()} - {None})
    if len(named) > 1:
        raise ConfigError(f"the records come from several sweep files ({', '.join(named)}); pass --sweep")
    return named[0] if named else DEFAULT_SWEEP


def run_report(args: argparse.Namespace, argv: list[str]) -> Path:
    records_dir = Path(args.records)
    if not records_dir.is_dir():
        raise ConfigError(f"option --records: {str(records_dir)!r} is not a folder")
    records = load_records(records_dir)
    spec = load_sweep(sweep_file(records, args.sweep))
    plan = build_plan(spec, records)
    out = Path(args.out)
    template = plan.first_training_run()
    majority = None
    try:
        majority = majority_label_accuracy(template.resolved) if template else None
    except (GateraError, OSError) as error:  # the page is still useful without the baseline row
        print(
            f"gatera-lab report: no majority-label row, the test sets are not readable: {error}",
            file=sys.stderr,
        )
    command = shlex.join(["gatera-lab", "report", *argv])
    claims = load_claims(spec.claims)
    report = build_report(spec, plan, records, command, f"{out.stem}_", majority, claims)
    for name, figure in report.figures.items():
        save_png(figure, out.parent / name)
    write_text_atomic(out, report.markdown)
    print(f"wrote {out} ({len(records)} records, {len(report.figures)} pictures)")
    return out


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab report``; returns the exit status (2 on a bad option or record)."""
    args = build_parser().parse_args(argv)
    try:
        run_report(args, argv)
    except GateraError as error:
        print(f"gatera-lab report: error: {error}", file=sys.stderr)
        return 2
    return 0
