"""How many rows of a tokenised split were longer than ``max_length`` and lost tokens, said once per build.

`tokenize_instruction` cuts a long row from the start of its prompt (left truncation); a response longer
than ``max_length`` on its own also loses the whole prompt and the end of the response. Either changes
what the model trains on, so a DataModule reports the counts of each split it builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lightning.pytorch.utilities.rank_zero import rank_zero_warn

from gatera_lab.datamodules.instruction_data import TokenizedExample


@dataclass(frozen=True)
class TruncationReport:
    """Rows of one split that were cut to ``max_length``.

    Attributes:
        split: the split's name in messages (``training``, ``validation``).
        rows: rows in the split.
        max_length: the longest sequence in tokens.
        prompt_cut: rows that lost tokens from the start of their prompt only.
        response_cut: rows whose response alone exceeds ``max_length``: no prompt left, response cut at the end.
    """

    split: str
    rows: int
    max_length: int
    prompt_cut: int
    response_cut: int
    cut_by_task: dict[str, int] = field(default_factory=dict)  # rows cut per task, tasks with cuts only

    @property
    def cut(self) -> int:
        """Rows that lost any token."""
        return self.prompt_cut + self.response_cut

    def message(self, owner: str) -> str:
        """One line for the user, e.g. ``X: 12 of 240 training rows longer than max_length=128 were cut (...)``."""
        parts = [f"{self.prompt_cut} lost the start of the prompt (left truncation)"]
        if self.response_cut:
            parts.append(f"{self.response_cut} lost the whole prompt and the end of the response")
        if self.cut_by_task:
            parts.append(
                "per task: " + ", ".join(f"{task} {count}" for task, count in self.cut_by_task.items())
            )
        return (
            f"{owner}: {self.cut} of {self.rows} {self.split} rows longer than max_length={self.max_length} "
            f"were cut ({'; '.join(parts)}); raise max_length, or set it to null to keep every row whole"
        )


def truncation_report(
    examples: Sequence[TokenizedExample], split: str, max_length: int, tasks: Sequence[str] | None = None
) -> TruncationReport:
    """Count the rows of ``examples`` that `tokenize_instruction` cut, by what they lost (and by task)."""
    cut_by_task: dict[str, int] = {}
    for example, task in zip(examples, tasks or [], strict=False):
        if example.prompt_cut or example.response_cut:
            cut_by_task[task] = cut_by_task.get(task, 0) + 1
    return TruncationReport(
        split=split,
        rows=len(examples),
        max_length=max_length,
        prompt_cut=sum(1 for e in examples if e.prompt_cut and not e.response_cut),
        response_cut=sum(1 for e in examples if e.response_cut),
        cut_by_task=cut_by_task,
    )


def warn_truncation(reports: Sequence[TruncationReport], owner: str) -> None:
    """A rank-zero warning for each report with cut rows (call once per dataset build)."""
    for report in reports:
        if report.cut:
            rank_zero_warn(report.message(owner))
