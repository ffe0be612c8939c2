"""`MultipleChoiceEvaluation`: the per-task accuracy stages of `GateraModule` (validation and test).

Evaluation batches (from `EvalCollator`) are answered by `evaluate_batch` with the stage's protocol; each
process adds its rows to one `TaskAccuracy` per stage, built at the epoch start on every process so that
all join its sync at the epoch end. The sums over processes are logged (``val/acc``, ``test/acc_<task>``);
at the end of ``test`` rank zero prints the table and writes ``test_results.json`` / ``.csv`` and every
row's outcome (`gatera_lab.evaluation.row_outcomes`), gathered from all processes, to ``test_rows.jsonl``;
``test_results`` then holds both metrics (``acc``, ``acc_norm``) per task and the rows.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch.distributed as dist
from torch import Tensor

from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import BatchEvaluation, Protocol, TaskAccuracy, evaluate_batch
from gatera_lab.evaluation.results_report import report_test_results
from gatera_lab.evaluation.row_outcomes import metric_accuracies, row_outcomes
from gatera_lab.io.atomic_write import write_jsonl_atomic
from gatera_lab.io.run_folder import run_folder


class MultipleChoiceEvaluation(L.LightningModule):
    """Mixin for a LightningModule with ``model``, ``method`` and the generation hyper-parameters.

    The host sets ``self.accuracy = {}`` and ``self.test_results = None`` and sends evaluation batches of
    its ``validation_step`` / ``test_step`` to `_evaluate`.
    """

    accuracy: dict[str, TaskAccuracy]
    test_results: dict[str, Any] | None
    test_outputs: list[BatchEvaluation]

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
        if stage == "test":
            self.test_outputs.append(_to_cpu(outcome))

    def on_validation_epoch_start(self) -> None:
        self._start_accuracy("val")

    def on_test_epoch_start(self) -> None:
        self._start_accuracy("test")
        self.test_outputs = []

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
        rows = _gather_rows(row_outcomes(self.test_outputs, self._task_names("test")))
        self.test_outputs = []
        self.log_dict({f"test/acc_{task}": value for task, value in accuracies.items()}, sync_dist=True)
        self.test_results = {
            "method": self.method.name,
            "model": self.hparams.model,
            "protocol": self.hparams.eval_protocol,
            "accuracy": accuracies,
            "counts": counts,
        }
        if rows and "acc" in rows[0]:
            self.test_results["acc"] = metric_accuracies(rows, "acc")
            self.test_results["acc_norm"] = metric_accuracies(rows, "acc_norm")
        if self.trainer.is_global_zero:
            report_test_results(self.test_results, run_folder(self.trainer))
            write_jsonl_atomic(run_folder(self.trainer) / "test_rows.jsonl", rows)
        self.test_results["rows"] = rows


def _to_cpu(outcome: BatchEvaluation) -> BatchEvaluation:
    fields = {
        key: value.cpu() if isinstance(value, Tensor) else value for key, value in vars(outcome).items()
    }
    return BatchEvaluation(**fields)


def _gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every process's rows (a collective under DDP), sorted by row id."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        shares: list[list[dict[str, Any]] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(shares, rows)
        rows = [row for share in shares for row in share or []]
    return sorted(rows, key=lambda row: row["row_id"])
