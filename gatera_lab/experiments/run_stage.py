"""One stage of a planned run, driven in this process through the CLI's Python API, and its record.

A stage builds `GateraCLI` with ``run=False`` from the run's arguments (its configs and overrides, the
same the plan resolved) plus its folder ``<runs>/<name>/<stage>``, then calls the trainer itself:

- ``fit``: ``trainer.fit`` with `FinalGateProbe` and `ValidationLog` added; the record takes the checkpoint
  path from the ``ModelCheckpoint`` callback, the validation metrics and losses from the trainer
  (`ValidationLog`, `training_summary`), the gate statistics from the probe and their course over training
  from the fit's TensorBoard events (`read_gate_trace`);
- ``test``: ``trainer.test`` from the fit's checkpoint (``weights_only``; `GateraModule` saves no
  hyper-parameters, so ``gatera-lab test --ckpt_path`` takes the same file; a zero-shot run tests the untrained
  adapter); the record takes ``module.test_results``.

The record is written as soon as the stage ends, so an interrupted sweep loses at most one stage. Each
record also keeps the equivalent ``gatera-lab`` command of its stages. A record keeps the fit's last
validation and the history of its average accuracy (``at_end``: it ran after the last optimizer step)::

    validation = {step, loss, accuracy: {avg, <task>...}, history: [[step, val/acc], ...], at_end}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from gatera_lab.diagnostics.final_gate_probe import FinalGateProbe
from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.gate_trace import read_gate_trace
from gatera_lab.experiments.machine import describe_machine, git_commit, peak_memory_gib
from gatera_lab.experiments.plan import PlannedRun
from gatera_lab.experiments.records import write_record
from gatera_lab.experiments.run_config import build_cli, command_line, get_path

STAGE_CLI = {"run": False, "save_config_kwargs": {"overwrite": True}, "parser_kwargs": {"default_env": False}}
TRAIN_KEYS = ("train/loss", "train/task_loss", "train/gate_entropy")


class ValidationLog(Callback):
    """Keeps ``{"step": global step, "metrics": {val/...: value}}`` of every validation in ``points``."""

    def __init__(self) -> None:
        self.points: list[dict[str, Any]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {
            key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")
        }
        self.points.append({"step": trainer.global_step, "metrics": metrics})


def validation_summary(points: list[dict[str, Any]], tasks: list[str], steps: int) -> dict[str, Any] | None:
    """The last validation of ``points`` that has ``val/acc`` (None if none has), as a record keeps it."""
    scored = [point for point in points if "val/acc" in point["metrics"]]
    if not scored:
        return None
    last = scored[-1]
    metrics = last["metrics"]
    accuracy = {"avg": metrics["val/acc"]}
    accuracy.update({task: metrics[f"val/acc_{task}"] for task in tasks if f"val/acc_{task}" in metrics})
    return {
        "step": last["step"],
        "loss": metrics.get("val/loss"),
        "accuracy": accuracy,
        "history": [[point["step"], point["metrics"]["val/acc"]] for point in scored],
        "at_end": last["step"] >= steps,
    }


def training_summary(trainer: L.Trainer) -> dict[str, Any]:
    """The last logged training losses (`TRAIN_KEYS` of ``callback_metrics``) at the fit's final step."""
    metrics = trainer.callback_metrics
    return {
        key.removeprefix("train/"): {"step": trainer.global_step, "value": float(metrics[key])}
        for key in TRAIN_KEYS
        if key in metrics
    }


@dataclass(frozen=True)
class RunContext:
    """Where records and run folders go, how runs are launched, and the sweep command for the records."""

    records_dir: Path
    runs_dir: Path
    sweep_file: str
    sweep_command: str
    mode: str = "subprocess"
    threads: int | None = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def base_record(run: PlannedRun, context: RunContext, previous: dict[str, Any] | None) -> dict[str, Any]:
    """``previous`` (or a new record) with what the plan says about ``run``."""
    previous = previous or {}
    return {
        **previous,
        "name": run.name,
        "identity": run.identity,
        "kind": run.kind,
        "method": run.method,
        "family": run.family,
        "phases": list(dict.fromkeys([*previous.get("phases", []), *run.phases])),
        "seed": run.seed,
        "learning_rate": run.learning_rate,
        "entropy_weight": run.entropy_weight,
        "config": run.resolved,
        "sweep": {"file": context.sweep_file, "command": context.sweep_command},
        "learning_rate_choice": run.learning_rate_choice or previous.get("learning_rate_choice"),
        "commands": dict(previous.get("commands") or {}),
        "created": previous.get("created") or _now(),
        "updated": _now(),
    }


def stage_args(run: PlannedRun, root: Path) -> list[str]:
    return [*run.args, "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]


def fit_stage(run: PlannedRun, context: RunContext, previous: dict[str, Any] | None) -> dict[str, Any]:
    """Train ``run`` and write its record (without a test); returns the record."""
    args = stage_args(run, context.runs_dir / run.name / "fit")
    cli = build_cli(args, **STAGE_CLI)
    probe, validations = FinalGateProbe(), ValidationLog()
    cli.trainer.callbacks.extend([probe, validations])
    started = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - started
    trainer = cli.trainer
    saver = (
        trainer.checkpoint_callback
    )  # its last checkpoint where one is kept, else the best (no monitor: last)
    checkpoint = (saver.last_model_path or saver.best_model_path) if saver else ""
    if not checkpoint or not Path(checkpoint).is_file():
        raise RuntimeError(f"the fit of {run.name} saved no checkpoint (ModelCheckpoint)")
    tasks = list(get_path(run.resolved, "data.init_args.tasks") or COMMONSENSE_COLUMNS)
    record = base_record(run, context, None if previous is None else {"created": previous.get("created")})
    record["commands"]["fit"] = command_line("fit", args)
    record.update(
        fit={
            "log_dir": str(trainer.log_dir),
            "checkpoint": str(checkpoint),
            "steps": trainer.global_step,
            "wall_seconds": round(seconds, 1),
            "peak_memory_gib": peak_memory_gib(),  # of the process that ran the fit
            "final": training_summary(trainer),
            "gate_trace": read_gate_trace(trainer.log_dir),  # None for an ungated method
        },
        validation=validation_summary(validations.points, tasks, trainer.global_step),
        gates=probe.result,
        test=None,
        machine=describe_machine(context.threads),
        git_commit=git_commit(),
    )
    write_record(context.records_dir, record)
    return record


def compact_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Row outcomes as a record keeps them: the ids and, one digit per row, the gold and predicted choices."""
    return {
        "ids": [row["row_id"] for row in rows],
        "gold": "".join(str(row["gold"]) for row in rows),
        "predicted": "".join(str(row["predicted"]) if 0 <= row["predicted"] < 10 else "x" for row in rows),
    }


def test_stage(run: PlannedRun, context: RunContext, record: dict[str, Any] | None) -> dict[str, Any]:
    """Test ``run`` (from its record's checkpoint; untrained for a zero-shot run), write the record."""
    root = context.runs_dir / run.name / "test"
    args = stage_args(run, root)
    checkpoint = record["fit"]["checkpoint"] if run.kind == "train" else None  # adapter-only, no hparams
    cli = build_cli(args, **STAGE_CLI)
    started = time.perf_counter()
    cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=checkpoint, weights_only=True)
    seconds = time.perf_counter() - started
    results = cli.model.test_results
    if results is None:
        raise RuntimeError(f"the test of {run.name} produced no per-task accuracy (module.test_results)")
    updated = base_record(run, context, record)
    updated["commands"]["test"] = command_line(
        "test", args + (["--ckpt_path", checkpoint] if checkpoint else [])
    )
    updated["test"] = {
        "settings": run.test_settings,
        "protocol": results.get("protocol"),
        "accuracy": results["accuracy"],
        "counts": results["counts"],
        "acc": results.get("acc"),
        "acc_norm": results.get("acc_norm"),
        "rows": compact_rows(results.get("rows") or []),
        "log_dir": str(cli.trainer.log_dir),
        "wall_seconds": round(seconds, 1),
        "peak_memory_gib": peak_memory_gib(),
        "machine": describe_machine(context.threads),
    }
    if record is None:  # zero-shot: the test is the whole run
        updated.update(fit=None, validation=None, gates=None, machine=updated["test"]["machine"])
        updated["git_commit"] = git_commit()
    write_record(context.records_dir, updated)
    return updated
