"""`GateStatisticsMonitor`: gate statistics over real tokens, per layer, per module type and overall.

On a diagnosed micro-batch it captures every gated module's gates (detached) and writes, for the groups
``all``, ``type_<kind>`` (``q``, ``k``, ``v``, ``up``, ``down``) and ``layer_<ii>`` (see
`gatera_lab.diagnostics.gate_statistics` for the formulas):

- scalars ``gates/<group>/mean``, ``/std``, ``/frac_low`` (g < 0.1), ``/frac_high`` (g > 0.9), ``/near_binary``;
- TensorBoard histograms ``gates_hist/<group>`` of the gate values (``all`` and the module types; layers too
  with ``layer_histograms``);
- ``gates/dead_adapters``: how many modules have ``g < low`` on at least ``dead_fraction`` of the real
  tokens, and their names as TensorBoard text ``gates/dead_adapter_names`` (and in the console) when
  the set changes.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info

from gatera_lab.diagnostics.gate_capture_diagnostic import GateCaptureDiagnostic
from gatera_lab.diagnostics.gate_statistics import (
    DEAD_FRACTION,
    HIGH,
    LOW,
    dead_adapters,
    grouped_summaries,
    grouped_values,
    short_name,
)
from gatera_lab.diagnostics.step_diagnostic import batch_tensor
from gatera_lab.diagnostics.tensorboard_output import log_histogram, log_scalars, log_text
from gatera_lab.errors import ConfigError


class GateStatisticsMonitor(GateCaptureDiagnostic):
    """Logs gate mean, std and near-binary shares per layer and module type every ``every_n_steps`` steps."""

    def __init__(
        self,
        every_n_steps: int = 50,
        low: float = LOW,
        high: float = HIGH,
        per_layer: bool = True,
        histograms: bool = True,
        layer_histograms: bool = False,
        dead_fraction: float = DEAD_FRACTION,
    ) -> None:
        """
        Args:
            every_n_steps: diagnose the optimizer steps 0, N, 2N, ...
            low: gates below it count in ``frac_low`` (and make a module dead).
            high: gates above it count in ``frac_high``.
            per_layer: also write the ``layer_<ii>`` groups' scalars.
            histograms: write TensorBoard histograms of ``all`` and of each module type.
            layer_histograms: also write one histogram per layer.
            dead_fraction: a module is dead when at least this share of its real tokens has ``g < low``.
        """
        super().__init__(every_n_steps)
        if not 0.0 <= low < high <= 1.0:
            raise ConfigError(
                f"options 'GateStatisticsMonitor.low' and 'high' need 0 <= low < high <= 1, got {low!r} and {high!r}"
            )
        if not 0.0 < dead_fraction <= 1.0:
            raise ConfigError(
                f"option 'GateStatisticsMonitor.dead_fraction' must lie in (0, 1], got {dead_fraction!r}"
            )
        self.low, self.high = float(low), float(high)
        self.per_layer = per_layer
        self.histograms = histograms
        self.layer_histograms = layer_histograms
        self.dead_fraction = float(dead_fraction)
        self._dead: list[str] | None = None

    def _wanted(self, group: str, layers: bool) -> bool:
        return not group.startswith("layer_") or layers

    def finish(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any) -> None:
        capture = self.take_capture()
        gates = capture.first_gates()
        if not gates:
            return
        mask = batch_tensor(batch, "attention_mask", like=next(iter(gates.values()), None))
        scalars: dict[str, float] = {}
        for group, summary in grouped_summaries(gates, mask, self.low, self.high).items():
            if self._wanted(group, self.per_layer):
                scalars.update(summary.as_scalars(f"gates/{group}"))
        dead = dead_adapters(gates, mask, self.low, self.dead_fraction)
        scalars["gates/dead_adapters"] = float(len(dead))
        log_scalars(trainer, scalars, self.step)
        if self.histograms:
            for group, values in grouped_values(gates, mask).items():
                if self._wanted(group, self.layer_histograms):
                    log_histogram(trainer, f"gates_hist/{group}", values, self.step)
        if dead != self._dead:
            self._dead = dead
            names = ", ".join(short_name(name) for name in dead) or "none"
            log_text(trainer, "gates/dead_adapter_names", names, self.step)
            if dead:
                rank_zero_info(
                    f"step {self.step}: {len(dead)} dead adapter(s) (gate < {self.low} on "
                    f">= {self.dead_fraction:.0%} of real tokens): {names}"
                )
