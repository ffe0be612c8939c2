"""Carrying out one planned run: ``fit`` (then a record), ``test`` from its checkpoint (then the record).

A zero-shot run is the test alone, without a checkpoint. When a record needs its test but its checkpoint
is gone (another machine), the run is trained again. Each stage runs where the context says
(`run_process`) and writes the record as soon as it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gatera_lab.experiments.plan import PlannedRun, run_status
from gatera_lab.experiments.run_process import RunFailed, run_stage
from gatera_lab.experiments.run_stage import RunContext

__all__ = ["RunContext", "RunFailed", "execute_run"]


def execute_run(
    run: PlannedRun, record: dict[str, Any] | None, context: RunContext, log: Callable[[str], None] = print
) -> dict[str, Any] | None:
    """Do what ``run`` still needs given its ``record``: nothing, its test, or fit then test."""
    status = run_status(run, record)
    if status == "done":
        return record
    if run.kind == "train":
        checkpoint = ((record or {}).get("fit") or {}).get("checkpoint")
        if status == "pending" or not (checkpoint and Path(checkpoint).is_file()):
            if status == "needs_test":
                log(f"  the checkpoint of {run.name} is gone ({checkpoint}); training it again")
            log(f"  fit: {run.name} (folder {context.runs_dir / run.name / 'fit'})")
            record = run_stage("fit", run, context, record)
    if run.needs_test:
        log(f"  test: {run.name} (folder {context.runs_dir / run.name / 'test'})")
        record = run_stage("test", run, context, record)
    return record
