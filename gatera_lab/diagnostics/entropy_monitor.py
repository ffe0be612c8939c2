"""`GateEntropyMonitor`: the entropy regulariser's value and its weighted share of the training loss.

On a diagnosed micro-batch, with ``H = mean_{l,t} H(g_lt)`` over gated modules and real tokens (the
regulariser `GateraModule` adds, recomputed from the captured gate logits) and ``lambda`` the method's
``entropy_weight``, it writes

- ``gates/entropy``: ``H`` (nats; ``log 2 = 0.693`` for gates at 0.5, 0 for binary gates),
- ``gates/entropy_term``: ``lambda * H``,
- ``gates/entropy_share``: ``lambda * H / L`` with ``L = L_task + lambda * H`` the micro-batch's loss
  (Lightning's reported loss times ``accumulate_grad_batches``, which undoes its division).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
from torch import Tensor

from gatera_lab.diagnostics.gate_capture_diagnostic import GateCaptureDiagnostic
from gatera_lab.diagnostics.gate_statistics import mean_gate_entropy
from gatera_lab.diagnostics.step_diagnostic import batch_tensor
from gatera_lab.diagnostics.tensorboard_output import log_scalars


def step_loss(outputs: Any, accumulate_grad_batches: int) -> float | None:
    """The micro-batch's loss from ``on_train_batch_end``'s ``outputs``, undoing the accumulation division."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    if not isinstance(loss, Tensor):
        return None
    return float(loss.detach()) * accumulate_grad_batches


class GateEntropyMonitor(GateCaptureDiagnostic):
    """Logs the gate entropy ``H``, ``lambda * H`` and ``lambda * H / loss`` every ``every_n_steps`` steps."""

    def __init__(self, every_n_steps: int = 50) -> None:
        """
        Args:
            every_n_steps: diagnose the optimizer steps 0, N, 2N, ...
        """
        super().__init__(every_n_steps)

    def finish(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any) -> None:
        capture = self.take_capture()
        gates = capture.first_gates()
        if not gates:
            return
        entropy = mean_gate_entropy(
            gates,
            capture.first_logits(),
            batch_tensor(batch, "attention_mask", like=next(iter(gates.values()), None)),
        )
        weight = float(getattr(getattr(pl_module, "method", None), "entropy_weight", 0.0))
        scalars = {"gates/entropy": entropy, "gates/entropy_term": weight * entropy}
        loss = step_loss(outputs, trainer.accumulate_grad_batches)
        if loss is not None and loss > 0:
            scalars["gates/entropy_share"] = weight * entropy / loss
        log_scalars(trainer, scalars, self.step)
