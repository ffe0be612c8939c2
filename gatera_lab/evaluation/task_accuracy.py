"""`TaskAccuracy`: per-task accuracy over a multi-task evaluation, as a torchmetrics `Metric`.

States are per-task sums of correct predictions and of rows (reduced by summation across processes), so
`compute` and `counts` are exact under DDP, provided each row is scored by one process only (see
`DistributedEvalSampler`): ``acc_t = correct_t / total_t`` and ``avg = mean_t acc_t`` over the tasks
that received rows (the papers' "Avg" column: a plain mean of task accuracies, not of rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from gatera_lab.errors import ConfigError


class TaskAccuracy(Metric):
    """Accuracy per task and their mean; ``compute()`` returns ``{task: acc, ..., "avg": mean}``."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, task_names: Sequence[str]) -> None:
        """
        Args:
            task_names: the tasks, in order; ``task_index`` in `update` indexes this list.
        """
        super().__init__()
        if not task_names or len(set(task_names)) != len(task_names):
            raise ConfigError(f"TaskAccuracy needs distinct task names, got {list(task_names)}")
        self.task_names = tuple(task_names)
        self.add_state(
            "correct", default=torch.zeros(len(task_names), dtype=torch.long), dist_reduce_fx="sum"
        )
        self.add_state("total", default=torch.zeros(len(task_names), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, task_index: Tensor, correct: Tensor) -> None:
        """Count rows: ``task_index`` (B,) into `task_names`, ``correct`` (B,) bool."""
        if task_index.numel() and not 0 <= int(task_index.min()) <= int(task_index.max()) < len(
            self.task_names
        ):
            raise ConfigError(
                f"task_index must lie in 0..{len(self.task_names) - 1}, got {task_index.tolist()}"
            )
        task_index = task_index.to(self.total.device)
        self.total += torch.bincount(task_index, minlength=len(self.task_names))  # (n_tasks,)
        self.correct += torch.bincount(
            task_index, weights=correct.to(self.total.device).float(), minlength=len(self.task_names)
        ).long()  # (n_tasks,)

    def compute(self) -> dict[str, Tensor]:
        seen = self.total > 0  # (n_tasks,)
        accuracy = self.correct.float() / self.total.clamp(min=1).float()  # (n_tasks,)
        result = {name: accuracy[index] for index, name in enumerate(self.task_names) if seen[index]}
        result["avg"] = accuracy[seen].mean() if seen.any() else torch.tensor(float("nan"))
        return result

    def counts(self) -> dict[str, tuple[int, int]]:
        """``{task: (correct, total)}`` of the tasks that received rows, summed over all processes.

        Reads the states synced across processes, as `compute` does (``compute`` restores this process's
        own states when it returns, so they must be synced again here). Under DDP this is a collective:
        every process calls it.
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            correct, total = self.correct.tolist(), self.total.tolist()
        return {
            name: (correct[index], total[index])
            for index, name in enumerate(self.task_names)
            if total[index] > 0
        }
