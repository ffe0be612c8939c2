"""What a fit measured, taken from the trainer while it runs: every validation's metrics and the last losses.

`ValidationLog` is a callback the fit stage adds and then reads: after each validation (not the sanity
check) it keeps ``trainer.global_step`` and the ``val/*`` entries of ``trainer.callback_metrics``. A record
keeps the last validation and the history of its average accuracy::

    validation = {step, loss, accuracy: {avg, <task>...}, history: [[step, val/acc], ...], at_end}

``at_end`` says whether the last validation ran after the last optimizer step of the fit.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

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
