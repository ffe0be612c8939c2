"""Add the gate trace (`gatera_lab.experiments.gate_trace`) to run records written before records kept it.

A sweep's fit stage now stores ``fit.gate_trace``: the gate mean, near-binary share and prompt / response
means that `GateStatisticsMonitor` logged on training batches (step 0: the initialisation). Records of
earlier fits lack it; this script reads it from each such record's ``fit.log_dir`` (the TensorBoard events
of that very fit, still on the machine that ran it) and rewrites the record atomically, under the run's
sweep claim so a working ``gatera-lab sweep`` is never raced. Nothing else in a record changes. A record
whose log folder is gone is left alone and named; an ungated fit gets ``gate_trace: null``.

    python scripts/backfill_gate_trace.py --records results/study/records --runs results/study/runs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gatera_lab.experiments.gate_trace import read_gate_trace
from gatera_lab.experiments.record_backfill import backfill_records, print_outcome


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, required=True, help="the sweep's records folder")
    parser.add_argument("--runs", type=Path, required=True, help="the sweep's run folders (for the claims)")
    return parser.parse_args(argv)


def backfill(records_dir: Path, runs_dir: Path) -> dict[str, list[str]]:
    """Names of the records ``added`` a trace, ``held`` by a worker, ``missing`` their log folder."""

    def fill(record: dict) -> bool:
        log_dir = Path(record["fit"]["log_dir"])
        if not log_dir.is_dir():
            return False
        record["fit"]["gate_trace"] = read_gate_trace(log_dir)
        return True

    def wanted(record: dict) -> bool:
        return bool(record.get("fit")) and "gate_trace" not in record["fit"]

    return backfill_records(records_dir, runs_dir, wanted, fill)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcome = backfill(args.records, args.runs)
    texts = {
        "added": "gate trace added",
        "held": "held by a worker, left",
        "missing": "log folder gone, left",
    }
    print_outcome(outcome, texts, args.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
