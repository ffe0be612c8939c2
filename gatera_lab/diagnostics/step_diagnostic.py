"""`StepDiagnostic`: the cadence and the on/off logic shared by the gate diagnostic callbacks.

A callback diagnoses the optimizer steps ``0, N, 2N, ...`` (``N = every_n_steps``); with gradient
accumulation it diagnoses the first micro-batch of such a step. On a diagnosed micro-batch `begin` runs at
``on_train_batch_start`` (install hooks) and `finish` at ``on_train_batch_end`` (read, log, remove hooks);
every other batch costs one modulo. A model without gated modules is never diagnosed: no hook is installed,
nothing is logged. Scalars are written at the global step the micro-batch started at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.errors import ConfigError


def check_positive(owner: str, option: str, value: int) -> int:
    """``value`` if it is a positive integer, else a `ConfigError` naming ``owner.option``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"option '{owner}.{option}' must be a positive integer, got {value!r}")
    return value


def diagnosed_model(pl_module: L.LightningModule) -> nn.Module:
    """The model whose gates are read: ``pl_module.model`` (`GateraModule`), else the module itself."""
    model = getattr(pl_module, "model", None)
    return model if isinstance(model, nn.Module) else pl_module


def batch_tensor(batch: Any, key: str, like: Tensor | None = None) -> Tensor | None:
    """``batch[key]`` for a dict-like batch, else ``None``.

    With ``like``, a (b, t) tensor of the step's first forward (a captured gate), the (B, T) tensor is cut to
    its leading b rows and t columns: under ``model.micro_batch_tokens`` the first forward is the first
    micro-batch, the leading rows with trailing padding columns trimmed (`gatera_lab.training.micro_batches`).
    """
    value = batch.get(key) if isinstance(batch, Mapping) else None
    if value is None or like is None or value.dim() != 2 or like.dim() != 2:
        return value
    return value[: like.shape[0], : like.shape[1]]  # (b, t)


class StepDiagnostic(Callback):
    """Runs `begin`/`finish` on every ``every_n_steps``-th optimizer step of a gated model."""

    def __init__(self, every_n_steps: int) -> None:
        """
        Args:
            every_n_steps: diagnose the optimizer steps 0, N, 2N, ...
        """
        self.every_n_steps = check_positive(type(self).__name__, "every_n_steps", every_n_steps)
        self._gated: bool | None = None
        self._last_step = -1
        self._active = False
        self.step = 0  # the global step of the current micro-batch

    def is_gated(self, pl_module: L.LightningModule) -> bool:
        """Whether the model has gated modules (looked up once per fit)."""
        if self._gated is None:
            self._gated = bool(gated_layers(diagnosed_model(pl_module)))
        return self._gated

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._gated, self._last_step, self._active = None, -1, False

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.step = trainer.global_step
        if self.step % self.every_n_steps or self.step == self._last_step or not self.is_gated(pl_module):
            return
        self._active, self._last_step = True, self.step
        self.begin(trainer, pl_module, batch)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._active:
            self._active = False
            self.finish(trainer, pl_module, outputs, batch)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self._active:
            self._active = False
            self.abort()

    @property
    def active(self) -> bool:
        """Whether the current micro-batch is diagnosed."""
        return self._active

    # ------------------------------------------------------------------ what a diagnostic does
    def begin(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any) -> None:
        """Before the forward of a diagnosed micro-batch (install hooks)."""

    def finish(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any) -> None:
        """After the optimizer step of a diagnosed micro-batch (read, log, remove hooks)."""

    def abort(self) -> None:
        """The step failed: remove hooks and drop what was kept."""
