"""Adding a field to run records written before records kept it, without racing a working sweep.

`backfill_records` visits each record that ``wanted`` selects, takes the run's sweep claim
(`gatera_lab.experiments.run_locks.claim_run`: a record a worker is writing is left and named ``held``),
re-reads the record as it is now, lets ``fill`` add the field in place and writes it back atomically
(`gatera_lab.experiments.records.write_record`). ``fill`` returns False when what it reads the field from is
gone (the run's log folder or checkpoint): the record is left unchanged and named ``missing``. Nothing else in
a record changes. The scripts `scripts/backfill_gate_trace.py` and `scripts/backfill_token_variance.py` use it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatera_lab.experiments.records import load_records, read_record, write_record
from gatera_lab.experiments.run_locks import claim_run

Record = dict[str, Any]
OUTCOMES = ("added", "held", "missing")


def backfill_records(
    records_dir: Path, runs_dir: Path, wanted: Callable[[Record], bool], fill: Callable[[Record], bool]
) -> dict[str, list[str]]:
    """Names of the records ``added`` the field, ``held`` by a worker, or ``missing`` its source (see above)."""
    outcome: dict[str, list[str]] = {key: [] for key in OUTCOMES}
    for name, record in sorted(load_records(records_dir).items()):
        if not wanted(record):
            continue
        with claim_run(runs_dir, name) as mine:
            if not mine:
                outcome["held"].append(name)
                continue
            record = read_record(records_dir, name)  # as it is now that the claim is ours
            if record is None or not wanted(record):
                continue
            if not fill(record):
                outcome["missing"].append(name)
                continue
            write_record(records_dir, record)
            outcome["added"].append(name)
    return outcome


def print_outcome(outcome: dict[str, list[str]], texts: dict[str, str], records_dir: Path) -> None:
    """One line per named record (``texts``: outcome -> what happened to it) and the count of updated ones."""
    for key in OUTCOMES:
        if key in texts:
            for name in outcome[key]:
                print(f"{name}: {texts[key]}")
    print(f"{len(outcome['added'])} record(s) updated in {records_dir}")
