"""Stages that measure a trained run from its checkpoint: its gates, and gate skipping's accuracy and time.

Both rebuild the run's module and datamodule through the CLI's Python API (its configs and overrides, as
the fit had them) and load the adapter from the fit's checkpoint, so nothing is trained again:

- ``gates``: `FinalGateProbe.measure` on the held-out rows; for a record whose gate statistics were written
  before they were kept per row (the fit stage writes them itself now);
- ``gate_skip``: choice scoring of a seeded sample of ``rows_per_task`` test rows per task, once without
  skipping and once per threshold ``tau`` (every (layer, token) pair with ``g < tau`` gets the base layer's
  output, `gatera_lab.adapters.gate_skip`): per threshold the per-task accuracy, the change against no
  skipping, the share of (layer, token) pairs skipped and the seconds, under the fit's autocast (bf16-mixed:
  bfloat16).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from gatera_lab.adapters.gate_skip import evaluate_gate_skip
from gatera_lab.adapters.precision_policy import precision_autocast
from gatera_lab.diagnostics.final_gate_probe import FinalGateProbe
from gatera_lab.evaluation import evaluate_items
from gatera_lab.experiments.plan import PlannedRun
from gatera_lab.experiments.records import write_record
from gatera_lab.experiments.run_config import build_cli, get_path
from gatera_lab.experiments.run_stage import STAGE_CLI, RunContext, base_record, stage_args
from gatera_lab.io.checkpoint_file import load_checkpoint_file


def trained_cli(run: PlannedRun, record: dict[str, Any], root: Path, overrides: tuple[str, ...] = ()) -> Any:
    """The run's CLI objects (not run; output under ``root``) with its fit's adapter loaded into ``cli.model``."""
    cli = build_cli([*stage_args(run, root), *overrides], **STAGE_CLI)
    module = cli.model
    module.configure_model()
    checkpoint = load_checkpoint_file(record["fit"]["checkpoint"])
    module.on_load_checkpoint(checkpoint)  # checks the metadata against the rebuilt model
    unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False).unexpected_keys
    if unexpected:
        raise RuntimeError(
            f"{record['fit']['checkpoint']}: tensors the rebuilt model lacks: {unexpected[:3]}"
        )
    return cli


def gates_stage(run: PlannedRun, context: RunContext, record: dict[str, Any]) -> dict[str, Any]:
    """Measure the gates of a trained gated run from its checkpoint; returns the updated record."""
    cli = trained_cli(run, record, context.runs_dir / run.name / "gates")
    cli.datamodule.setup("fit")
    started = time.perf_counter()
    gates = FinalGateProbe().measure(cli.model.model, cli.datamodule, cli.model.device)
    updated = base_record(run, context, record)
    updated["gates"] = {
        **gates,
        "step": record["fit"]["steps"],
        "measured": "from the fit's checkpoint",
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    write_record(context.records_dir, updated)
    return updated


def gate_skip_stage(run: PlannedRun, context: RunContext, record: dict[str, Any]) -> dict[str, Any]:
    """Gate skipping at ``run.gate_skip``'s thresholds on its sample of test rows; returns the record."""
    settings = run.gate_skip or {}
    sample = ("--data.init_args.test_sample", str(settings["rows_per_task"]))
    sample += ("--data.init_args.test_sample_seed", str(settings["sample_seed"]))
    cli = trained_cli(run, record, context.runs_dir / run.name / "gate_skip", sample)
    data, model = cli.datamodule, cli.model.model
    data.setup("test")
    batch_size = int(get_path(run.resolved, "data.init_args.eval_batch_size") or 8)
    precision = str(get_path(run.resolved, "trainer.precision", ""))

    def accuracy(evaluated: torch.nn.Module) -> dict[str, float]:
        device_type = next(evaluated.parameters()).device.type
        with precision_autocast(precision, device_type):  # as the fit computed
            accuracies, _, _ = evaluate_items(
                evaluated, data.tokenizer, data.test_items, data.task_names, "likelihood", batch_size
            )
        return accuracies

    results = evaluate_gate_skip(model, accuracy, [None, *settings["thresholds"]])
    reference = results[0].metric["avg"]
    updated = base_record(run, context, record)
    updated["gate_skip"] = {
        "settings": settings,
        "rows": len(data.test_items),
        "results": [
            {
                "threshold": result.threshold,
                "accuracy": result.metric,
                "change_points": 100 * (result.metric["avg"] - reference),
                "skipped_fraction": result.skipped_fraction,
                "seconds": round(result.seconds, 1),
            }
            for result in results
        ],
    }
    write_record(context.records_dir, updated)
    return updated
