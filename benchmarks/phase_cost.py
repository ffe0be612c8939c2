"""`PhaseCost`: a Lightning callback that records what each phase of a run costs, for `benchmarks/run_cost.py`.

Added to any `gatera-lab fit` / `test` command as ``--trainer.callbacks+=benchmarks.phase_cost.PhaseCost``
(with the repository root on ``PYTHONPATH``); it writes a JSON file at the path in the environment variable
``GATERA_LAB_PHASE_COST`` after each phase. Per phase (``fit``, ``test``):

- ``peak_bytes``: the process's peak resident set size during the phase (Linux ``VmHWM``, reset through
  ``/proc/self/clear_refs`` when the phase starts); on CUDA also ``cuda_peak_bytes``
  (``torch.cuda.max_memory_allocated``, reset likewise);
- ``start_bytes`` / ``end_bytes``: the resident set size when the phase starts and ends (what the phase
  kept: caches, the allocator's free lists);
- ``peak_rises``: ``[batch index, token slots, peak so far]`` each time the fit's peak rose by 50 MiB;
- ``seconds``: wall time of the phase; for fit also ``train_seconds`` (training batches only, optimizer
  step included; validation excluded), ``train_tokens`` (real tokens of the training batches) and the first
  20 steps' ``losses``; for test ``rows`` (multiple-choice rows scored).

The breakdown terms it knows exactly are recorded too: ``process_bytes`` (resident before the model loads:
interpreter, libraries, data), ``frozen_bytes`` (the base weights) and ``adapter_state_bytes`` (trainable
parameters, their gradients and the optimizer's state), and the largest training batch in tokens and in
target positions, from which `run_cost.py` states the logits' size.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from benchmarks import memory

LOSS_STEPS = 20


def _reset_peak(device: torch.device) -> None:
    memory.CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


class PhaseCost(Callback):
    """Peak memory, time and throughput of the fit and test phases, written to ``$GATERA_LAB_PHASE_COST``."""

    def __init__(self) -> None:
        self.path = Path(os.environ.get("GATERA_LAB_PHASE_COST", "phase_cost.json"))
        self.record: dict[str, Any] = {"threads": torch.get_num_threads()}
        self._phase_start = 0.0
        self._batch_start = 0.0

    # ------------------------------------------------------------------ helpers
    def _start(self, phase: str, pl_module: L.LightningModule) -> None:
        _reset_peak(pl_module.device)
        self._phase_start = time.perf_counter()
        self.record[phase] = {"start_bytes": memory.status_bytes("VmRSS")}

    def _end(self, phase: str, pl_module: L.LightningModule) -> None:
        entry = self.record[phase]
        entry["seconds"] = time.perf_counter() - self._phase_start
        entry["peak_bytes"] = memory.status_bytes("VmHWM")
        entry["end_bytes"] = memory.status_bytes("VmRSS")
        if pl_module.device.type == "cuda":
            entry["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(pl_module.device)
        self.path.write_text(json.dumps(self.record, indent=1))

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.record.setdefault("process_bytes", memory.status_bytes("VmRSS"))  # before the first model load

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = pl_module.model
        self.record["frozen_bytes"] = sum(
            p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad
        )
        self._start("fit", pl_module)
        self.record["fit"].update(
            train_seconds=0.0, train_tokens=0, losses=[], max_batch_tokens=0, max_batch_targets=0
        )

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        fit = self.record["fit"]
        fit["train_seconds"] += time.perf_counter() - self._batch_start
        fit["train_tokens"] += int(batch["attention_mask"].sum())
        fit["max_batch_tokens"] = max(fit["max_batch_tokens"], batch["input_ids"].numel())
        fit["max_batch_targets"] = max(
            fit["max_batch_targets"], int((batch["response_mask"][:, 1:] != 0).sum())
        )
        high_water = memory.status_bytes("VmHWM")
        if (
            high_water > fit.get("_high_water", 0) + 50 * 2**20
        ):  # where the fit's peak rose, and by what batch
            fit["_high_water"] = high_water
            fit.setdefault("peak_rises", []).append([batch_idx, batch["input_ids"].numel(), high_water])
        if len(fit["losses"]) < LOSS_STEPS:
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            fit["losses"].append(float(loss))
        if "adapter_state_bytes" not in self.record and trainer.optimizers:
            trainable = [p for p in pl_module.model.parameters() if p.requires_grad]
            state = sum(
                v.numel() * v.element_size()
                for s in trainer.optimizers[0].state.values()
                for v in s.values()
                if torch.is_tensor(v)
            )
            self.record["adapter_state_bytes"] = state + 2 * sum(
                p.numel() * p.element_size() for p in trainable
            )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end("fit", pl_module)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("test", pl_module)
        self.record["test"]["rows"] = 0

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if "candidate_ids" in batch:
            self.record["test"]["rows"] += int(batch["candidate_ids"].shape[0])

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end("test", pl_module)
