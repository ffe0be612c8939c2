"""Carrying out a planned run: ``fit`` then ``test``, each stage in this process or in a child of its own.

`execute_run` does what a run still needs given its record: nothing, its test, or fit then test (a zero-shot
run is the test alone; a record whose checkpoint is gone is trained again). With ``launcher: subprocess``
a stage is ``python -m gatera_lab.experiments.run_process REQUEST.json`` (stage, run, record so far and
context as JSON), which runs it in-process (`run_stage`) and writes the record itself; its console goes to
``<runs>/<name>/<stage>/console.log``. A failed stage is a `RunFailed` naming the run and the stage.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gatera_lab.errors import GateraError
from gatera_lab.experiments.checkpoint_stages import gate_skip_stage, gates_stage
from gatera_lab.experiments.plan import PlannedRun, run_status
from gatera_lab.experiments.records import read_record
from gatera_lab.experiments.run_stage import RunContext, fit_stage, test_stage
from gatera_lab.io.atomic_write import write_json_atomic

__all__ = ["RunContext", "RunFailed", "execute_run", "run_stage"]
STAGES = {"fit": fit_stage, "test": test_stage, "gates": gates_stage, "gate_skip": gate_skip_stage}


class RunFailed(GateraError, RuntimeError):
    """A fit or test did not finish; names the run, the stage and where its console went."""


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
    fields = {**dataclasses.asdict(context), "records_dir": str(context.records_dir)}
    fields["runs_dir"] = str(context.runs_dir)
    write_json_atomic(
        request, {"stage": stage, "run": dataclasses.asdict(run), "record": record, "context": fields}
    )
    environment = dict(os.environ)
    if context.threads:
        environment.update({"OMP_NUM_THREADS": str(context.threads), "MKL_NUM_THREADS": str(context.threads)})
    console = folder / "console.log"
    with open(console, "a", encoding="utf-8") as log:
        command = [sys.executable, "-m", __name__, str(request)]
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=environment).returncode
    written = read_record(context.records_dir, run.name)
    if code != 0 or written is None or not written.get(stage):
        tail = "\n".join(console.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise RunFailed(
            f"run {run.name}: {stage} failed (exit code {code}); console log {console}"
            + (f"\n  last lines:\n{tail}" if tail else "")
        )
    return written


def run_stage(stage: str, run: PlannedRun, context: RunContext, record: dict | None) -> dict[str, Any]:
    """Run ``stage`` (``fit`` or ``test``) of ``run`` as ``context.mode`` says; returns the new record."""
    runner = _in_process if context.mode == "inprocess" else _in_child
    return runner(stage, run, context, record)


def execute_run(
    run: PlannedRun,
    record: dict[str, Any] | None,
    context: RunContext,
    log: Callable[[str], None] = print,
    after_fit: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Do what ``run`` still needs given its ``record``: nothing, its test, or fit then test (and its gate
    measurements); ``after_fit`` is called when a fit stage ends (the sweep frees its fit slot there)."""
    status = run_status(run, record)
    if status == "done":
        return record
    if run.kind == "train":
        checkpoint = ((record or {}).get("fit") or {}).get("checkpoint")
        if status == "pending" or not (checkpoint and Path(checkpoint).is_file()):
            if status != "pending":
                log(f"  the checkpoint of {run.name} is gone ({checkpoint}); training it again")
            log(f"  fit: {run.name} (folder {context.runs_dir / run.name / 'fit'})")
            try:
                record = run_stage("fit", run, context, record)
            finally:
                if after_fit is not None:
                    after_fit()
    stages = (
        ("test", ("needs_test", "pending")),
        ("gates", ("needs_gates",)),
        ("gate_skip", ("needs_gate_skip",)),
    )
    for stage, needed in stages:  # "pending" after the fit: a zero-shot run, whose test is the whole run
        if run_status(run, record) in needed:
            log(f"  {stage}: {run.name} (folder {context.runs_dir / run.name / stage})")
            record = run_stage(stage, run, context, record)
    return record


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
