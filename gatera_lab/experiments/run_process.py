"""Where a stage runs: in this process, or in a child Python process of its own (``launcher: subprocess``).

A child keeps each run's memory and threads apart from the sweep: it is ``python -m
gatera_lab.experiments.run_process REQUEST.json`` (the stage, the planned run, its record so far and the
context, as JSON), runs the stage in-process (`run_stage`) and writes the record itself; its console goes
to ``<runs>/<name>/<stage>/console.log``. Either way the caller gets the record back, or a `RunFailed` that
names the run and the stage (and the console log's last lines).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

from gatera_lab.atomic_write import write_json_atomic
from gatera_lab.errors import GateraError
from gatera_lab.experiments.plan import PlannedRun
from gatera_lab.experiments.records import read_record
from gatera_lab.experiments.run_stage import RunContext, fit_stage, test_stage

STAGES = {"fit": fit_stage, "test": test_stage}


class RunFailed(GateraError, RuntimeError):
    """A fit or test did not finish; names the run, the stage and where its console went."""


def _tail(path: Path, lines: int = 15) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _in_process(stage: str, run: PlannedRun, context: RunContext, record: dict | None) -> dict[str, Any]:
    previous = torch.get_num_threads()
    if context.threads:
        torch.set_num_threads(context.threads)
    try:
        return STAGES[stage](run, context, record)
    except Exception as error:  # a failed run must not end the sweep: the caller reports it and goes on
        traceback.print_exc()
        raise RunFailed(f"run {run.name}: {stage} failed: {type(error).__name__}: {error}") from error
    finally:
        torch.set_num_threads(previous)


def _in_child(stage: str, run: PlannedRun, context: RunContext, record: dict | None) -> dict[str, Any]:
    folder = context.runs_dir / run.name / stage
    folder.mkdir(parents=True, exist_ok=True)
    request = folder / "request.json"
    context_fields = {**dataclasses.asdict(context), "records_dir": str(context.records_dir)}
    context_fields["runs_dir"] = str(context.runs_dir)
    payload = {"stage": stage, "run": dataclasses.asdict(run), "record": record, "context": context_fields}
    write_json_atomic(request, payload)
    environment = dict(os.environ)
    if context.threads:
        environment.update({"OMP_NUM_THREADS": str(context.threads), "MKL_NUM_THREADS": str(context.threads)})
    console = folder / "console.log"
    with open(console, "a", encoding="utf-8") as log:
        code = subprocess.run(
            [sys.executable, "-m", __name__, str(request)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        ).returncode
    written = read_record(context.records_dir, run.name)
    if code != 0 or written is None or not written.get(stage):
        tail = _tail(console)
        raise RunFailed(
            f"run {run.name}: {stage} failed (exit code {code}); console log {console}"
            + (f"\n  last lines:\n{tail}" if tail else "")
        )
    return written


def run_stage(stage: str, run: PlannedRun, context: RunContext, record: dict | None) -> dict[str, Any]:
    """Run ``stage`` (``fit`` or ``test``) of ``run`` as ``context.mode`` says; returns the new record."""
    runner = _in_process if context.mode == "inprocess" else _in_child
    return runner(stage, run, context, record)


def _child(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    context = request["context"]
    context = RunContext(
        **{**context, "records_dir": Path(context["records_dir"]), "runs_dir": Path(context["runs_dir"])}
    )
    run = PlannedRun(**{**request["run"], "args": tuple(request["run"]["args"])})
    if context.threads:
        torch.set_num_threads(context.threads)
    STAGES[request["stage"]](run, context, request["record"])
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
