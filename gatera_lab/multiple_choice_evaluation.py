"""`MultipleChoiceEvaluation`: the per-task accuracy stages of `GateraModule` (validation and test).

Evaluation batches (from `EvalCollator`) are answered by `evaluate_batch` with the stage's protocol; each
process adds its rows to one `TaskAccuracy` per stage, built at the epoch start on every process so that
all join its sync at the epoch end. The sums over processes are logged (``val/acc``, ``test/acc_<task>``);
at the end of ``test`` rank zero prints the table and writes ``test_results.json`` / ``.csv``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import Tensor

from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import Protocol, TaskAccuracy, evaluate_batch
from gatera_lab.evaluation.results_report import report_test_results
from gatera_lab.run_folder import run_folder


class MultipleChoiceEvaluation(L.LightningModule):
    """Mixin for a LightningModule with ``model``, ``method`` and the generation hyper-parameters.

    The host sets ``self.accuracy = {}`` and ``self.test_results = None`` and sends evaluation batches of
    its ``validation_step`` / ``test_step`` to `_evaluate`.
    """

    accuracy: dict[str, TaskAccuracy]
    test_results: dict[str, Any] | None

    def _task_names(self, stage: str) -> tuple[str, ...]:
        datamodule = self.trainer.datamodule
        names = getattr(datamodule, "val_task_names" if stage == "val" else "task_names", None)
        if not names:
            raise ConfigError(
                f"{type(datamodule).__name__} serves multiple-choice batches but names no tasks "
                "(attributes 'task_names' / 'val_task_names')"
            )
        return tuple(names)

    def _start_accuracy(self, stage: str) -> None:
        """A fresh metric for ``stage`` on every process when the DataModule names its tasks.

        Built at the epoch start, not at the first evaluation batch, so that every process holds one and
        joins its sync at the epoch end even if it got no evaluation batch (the sync is a collective).
        """
        self.accuracy.pop(stage, None)
        datamodule = self.trainer.datamodule
        if getattr(datamodule, "val_task_names" if stage == "val" else "task_names", None):
            self.accuracy[stage] = TaskAccuracy(self._task_names(stage)).to(self.device)

    def _finish_accuracy(self, stage: str) -> tuple[dict[str, Tensor], dict[str, tuple[int, int]]] | None:
        """The stage's accuracies and ``{task: (correct, total)}``, both summed over every process.

        None when no process scored a row. Every process calls this (the sync is a collective).
        """
        metric = self.accuracy.pop(stage, None)
        if metric is None:
            return None
        counts = metric.counts()  # synced: the same on every process
        if not counts:
            return None
        return metric.compute(), counts

    def _evaluate(self, stage: str, batch: dict[str, Tensor], protocol: Protocol) -> None:
        if stage not in self.accuracy:
            self.accuracy[stage] = TaskAccuracy(self._task_names(stage)).to(self.device)
        outcome = evaluate_batch(
            self.model,
            batch,
            protocol=protocol,
            tokenizer=getattr(self.trainer.datamodule, "tokenizer", None),
            max_new_tokens=self.hparams.generation_max_new_tokens,
            num_beams=self.hparams.generation_num_beams,
        )
        self.accuracy[stage].update(outcome.task_index, outcome.correct)

    def on_validation_epoch_start(self) -> None:
        self._start_accuracy("val")

    def on_test_epoch_start(self) -> None:
        self._start_accuracy("test")

    # The accuracies are already summed over processes (equal everywhere); ``sync_dist`` averages equal values.
    def on_validation_epoch_end(self) -> None:
        finished = self._finish_accuracy("val")
        if finished is not None:
            accuracies = finished[0]
            self.log("val/acc", accuracies.pop("avg"), prog_bar=True, sync_dist=True)
            self.log_dict({f"val/acc_{task}": value for task, value in accuracies.items()}, sync_dist=True)

    def on_test_epoch_end(self) -> None:
        finished = self._finish_accuracy("test")
        if finished is None:
            return
        accuracies = {task: float(value) for task, value in finished[0].items()}
        counts = finished[1]
        self.log_dict({f"test/acc_{task}": value for task, value in accuracies.items()}, sync_dist=True)
        self.test_results = {
            "method": self.method.name,
            "model": self.hparams.model,
            "protocol": self.hparams.eval_protocol,
            "accuracy": accuracies,
            "counts": counts,
        }
        if self.trainer.is_global_zero:
            report_test_results(self.test_results, run_folder(self.trainer))
