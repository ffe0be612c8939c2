"""The learning rate of a method family, chosen from its grid by validation accuracy (never by a test set).

Every method of the family is trained once per learning rate of the grid (the search seed); the score of a
rate is the mean, over the family's methods, of the validation accuracy (the run's likelihood protocol on the
held-out rows of the training mixture) at the end of training:

    score(lr) = mean_m val_acc(m, lr),    chosen = argmax_lr score(lr)

Ties (equal to 1e-9) go to the lower mean validation loss, then to the smaller learning rate. Scoring the
gated and ungated methods together gives both the same rate, so neither is tuned more than the other.

Where no run logs a validation accuracy (a data module whose validation holds no multiple-choice rows, e.g.
a user's own instruction file: only ``val/loss``), the rate with the lowest mean validation loss is chosen,
and the reason says so. A grid of one rate needs no validation at all: that rate is the family's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gatera_lab.errors import ConfigError


@dataclass(frozen=True)
class GridPoint:
    """One method at one learning rate: its final validation accuracy and loss (NaN if not logged)."""

    accuracy: float
    loss: float = math.nan


@dataclass(frozen=True)
class LearningRateChoice:
    """The chosen rate of a family, the scores it was chosen from, and the reason in words."""

    family: str
    learning_rate: float
    grid: dict[float, dict[str, GridPoint]]
    reason: str

    def score(self, learning_rate: float) -> float:
        return _mean(self.grid[learning_rate], "accuracy")

    def as_record(self) -> dict[str, Any]:
        """The JSON form kept in the records of the runs that use the chosen rate."""
        return {
            "family": self.family,
            "chosen": self.learning_rate,
            "criterion": "highest mean validation accuracy over the family's methods (search seed)",
            "grid": [
                {
                    "learning_rate": rate,
                    "validation_accuracy": {method: point.accuracy for method, point in points.items()},
                    "validation_loss": {
                        method: None if math.isnan(point.loss) else point.loss
                        for method, point in points.items()
                    },
                    "mean_validation_accuracy": self.score(rate),
                }
                for rate, points in self.grid.items()
            ],
            "reason": self.reason,
        }


def _mean(points: dict[str, GridPoint], name: str) -> float:
    """The mean of ``accuracy`` or ``loss`` over ``points``, NaN values left out (NaN if all are)."""
    finite = [value for point in points.values() if not math.isnan(value := getattr(point, name))]
    return sum(finite) / len(finite) if finite else math.nan


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def choose_learning_rate(family: str, grid: dict[float, dict[str, GridPoint]]) -> LearningRateChoice:
    """Choose the rate of ``family`` from ``grid`` ({learning rate: {method: GridPoint}}, complete).

    Raises a `ConfigError` when no rate has a validation accuracy (validation did not run).
    """
    if not grid:
        raise ConfigError(f"family {family!r}: the learning-rate grid is empty")

    def key(rate: float) -> tuple[float, float, float]:
        accuracy, loss = _mean(grid[rate], "accuracy"), _mean(grid[rate], "loss")
        return (
            -math.inf if math.isnan(accuracy) else round(accuracy, 9),
            -(math.inf if math.isnan(loss) else round(loss, 9)),
            -rate,
        )

    chosen = max(grid, key=key)
    best = _mean(grid[chosen], "accuracy")
    if len(grid) == 1 and math.isnan(best):
        reason = f"learning rate {chosen:g} is the family's only rate (no selection)"
        return LearningRateChoice(family, chosen, grid, reason)
    if math.isnan(best):
        return _choice_by_loss(family, grid, chosen)
    members = ", ".join(f"{method} {_percent(point.accuracy)}" for method, point in grid[chosen].items())
    others = "; ".join(
        f"{rate:g}: {_percent(_mean(grid[rate], 'accuracy'))}" for rate in grid if rate != chosen
    )
    tied = ", ".join(f"{rate:g}" for rate in grid if rate != chosen and key(rate)[0] == key(chosen)[0])
    reason = (
        f"learning rate {chosen:g} has the highest mean validation accuracy over {', '.join(grid[chosen])}: "
        f"{_percent(best)} ({members})"
        + (f" (tied with {tied}; lower validation loss wins)" if tied else "")
        + (f"; the other rates scored {others}" if others else "")
    )
    return LearningRateChoice(family, chosen, grid, reason)


def _choice_by_loss(
    family: str, grid: dict[float, dict[str, GridPoint]], chosen: float
) -> LearningRateChoice:
    """``chosen`` (the lowest mean validation loss) where no run logged an accuracy; an error if none logged
    a loss either."""
    loss = _mean(grid[chosen], "loss")
    if math.isnan(loss):
        raise ConfigError(
            f"family {family!r}: no run of the learning-rate grid logged a validation accuracy (val/acc) or "
            "loss (val/loss); the sweep needs validation at the end of training (data.val_size > 0)"
        )
    others = "; ".join(f"{rate:g}: {_mean(grid[rate], 'loss'):.4f}" for rate in grid if rate != chosen)
    reason = (
        f"learning rate {chosen:g} has the lowest mean validation loss over {', '.join(grid[chosen])}: "
        f"{loss:.4f} (no validation accuracy was logged)"
        + (f"; the other rates scored {others}" if others else "")
    )
    return LearningRateChoice(family, chosen, grid, reason)
