"""`FinalGateProbe`: the gates of a gated adapter at the end of training, written as ``final_gates.json``.

When training ends, in eval mode and without autograd, the probe runs the model on up to ``max_batches``
held-out batches (the datamodule's validation loss loader; its training loader if it has none) and pools
every gated module's gate over the real tokens ``S`` (``attention_mask = 1``), then over the prompt tokens
``P`` (``response_mask = 0``) and the response tokens ``R`` (``response_mask = 1``):

    mean = sum_S g / |S|,    near_binary = |{g < 0.1}| / |S| + |{g > 0.9}| / |S|,
    prompt_mean = sum_P g / |P|,    response_mean = sum_R g / |R|,    H = mean_S H(g)  (nats)

for the group ``all`` and per module type (``type_q`` ...; pooled by the diagnostics' `grouped_values`),
with ``bins``-bin histograms of the ``all`` gates on P and on R. It then continues the probe prompt greedily
(`trace_generation`) and keeps the mean gate of the prefill pass and of the decode passes, and the
layer-by-token gate matrix (means over each layer's modules) for a heatmap. Ungated models are skipped. The file goes to the run's log folder, atomically; the same
statistics stay in ``result`` for the caller that added the probe (the sweep's fit stage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from gatera_lab.atomic_write import write_json_atomic
from gatera_lab.diagnostics.gate_capture import GateCapture, gated_layers
from gatera_lab.diagnostics.gate_statistics import binary_entropy, grouped_values, summarize
from gatera_lab.diagnostics.generation_trace import trace_generation
from gatera_lab.diagnostics.prefill_decode_monitor import DEFAULT_PROBE
from gatera_lab.diagnostics.step_diagnostic import check_positive, diagnosed_model
from gatera_lab.experiments.records import json_safe
from gatera_lab.run_folder import run_folder

FILENAME = "final_gates.json"


def _held_out_batches(datamodule: Any, max_batches: int) -> list[dict[str, torch.Tensor]]:
    """Up to ``max_batches`` loss batches (with ``response_mask``): validation first, else training."""
    for loader_name in ("val_dataloader", "train_dataloader"):
        loaders = getattr(datamodule, loader_name, None)
        loaders = loaders() if callable(loaders) else None
        for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
            batches = []
            for batch in loader or []:
                if not isinstance(batch, dict) or "response_mask" not in batch:
                    break
                batches.append(batch)
                if len(batches) == max_batches:
                    break
            if batches:
                return batches
    return []


def _summary(values: torch.Tensor) -> dict[str, float]:
    summary = summarize(values)
    return {
        "count": summary.count,
        "mean": summary.mean,
        "std": summary.std,
        "frac_low": summary.frac_low,
        "frac_high": summary.frac_high,
        "near_binary": summary.near_binary,
        "entropy": float(binary_entropy(values).mean()) if values.numel() else float("nan"),
    }


def _histogram(values: torch.Tensor, bins: int) -> list[int]:
    counts, _ = np.histogram(values.double().cpu().numpy(), bins=bins, range=(0.0, 1.0))
    return [int(count) for count in counts]


class FinalGateProbe(Callback):
    """Writes the end-of-training gate statistics and a probe generation's gates to ``final_gates.json``."""

    def __init__(
        self,
        max_batches: int = 8,
        probe_prompt: str = DEFAULT_PROBE,
        max_new_tokens: int = 16,
        bins: int = 20,
    ) -> None:
        """
        Args:
            max_batches: held-out batches to pool the gate statistics over.
            probe_prompt: the instruction of the probe generation (wrapped in the LLM-Adapters template).
            max_new_tokens: tokens the probe generates (greedy; it stops at end-of-sequence).
            bins: histogram bins on [0, 1].
        """
        self.max_batches = check_positive(type(self).__name__, "max_batches", max_batches)
        self.probe_prompt = probe_prompt
        self.max_new_tokens = max_new_tokens
        self.bins = check_positive(type(self).__name__, "bins", bins)
        self.written: Path | None = None
        self.result: dict[str, Any] | None = None  # the statistics of the last on_train_end, as written

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = diagnosed_model(pl_module)
        if not gated_layers(model) or not trainer.is_global_zero:
            return
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                statistics = self.statistics(model, trainer.datamodule, pl_module.device)
                statistics["probe"] = self.probe(model, trainer.datamodule)
        finally:
            model.train(was_training)
        statistics["step"] = trainer.global_step
        self.written = run_folder(trainer) / FILENAME  # not trainer.log_dir: it broadcasts (rank 0 only here)
        self.result = json_safe(statistics)
        write_json_atomic(self.written, self.result)

    def statistics(self, model: torch.nn.Module, datamodule: Any, device: torch.device) -> dict[str, Any]:
        """Pooled gate statistics of the held-out batches (see the module docstring)."""
        capture = GateCapture(model)
        pooled: dict[str, dict[str, list[torch.Tensor]]] = {}  # group -> {"all"|"prompt"|"response": values}
        batches = _held_out_batches(datamodule, self.max_batches)
        for batch in batches:
            real = batch["attention_mask"].to(device) != 0  # (B, T)
            response = real & (batch["response_mask"].to(device) != 0)  # (B, T)
            masks = {"all": real, "prompt": real & ~response, "response": response}
            capture.start()
            try:
                model(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                )
            finally:
                capture.stop()
            gates = capture.first_gates()  # module name -> (B, T)
            for part, mask in masks.items():
                for group, values in grouped_values(gates, mask).items():  # values (N,)
                    if group == "all" or group.startswith("type_"):
                        pooled.setdefault(group, {}).setdefault(part, []).append(values.cpu())
        groups, histograms = {}, None
        for group, parts in pooled.items():
            values = {part: torch.cat(chunks) for part, chunks in parts.items()}
            groups[group] = {
                **_summary(values["all"]),
                "prompt_mean": summarize(values["prompt"]).mean,
                "response_mean": summarize(values["response"]).mean,
            }
            if group == "all":
                histograms = {part: _histogram(values[part], self.bins) for part in ("prompt", "response")}
        return {
            "rows": sum(int(batch["input_ids"].shape[0]) for batch in batches),
            "modules": len(gated_layers(model)),
            "groups": groups,
            "histogram": None if histograms is None else {"bins": self.bins, **histograms},
        }

    def probe(self, model: torch.nn.Module, datamodule: Any) -> dict[str, Any] | None:
        """Prefill and decode means of a greedy generation from the probe prompt, and its layer x token gates."""
        tokenizer = getattr(datamodule, "tokenizer", None)
        if tokenizer is None:
            return None
        from gatera_lab.datamodules.instruction_prompt import render_prompt

        trace = trace_generation(model, tokenizer, render_prompt(self.probe_prompt), self.max_new_tokens)
        labels, rows = trace.rows("layer")  # rows (L, T)
        return {
            "prompt": self.probe_prompt,
            "prefill_mean": trace.prefill_mean,
            "decode_mean": trace.decode_mean,
            "n_prompt": trace.n_prompt,
            "tokens": trace.tokens,
            "layers": labels,
            "layer_gates": [[round(float(value), 4) for value in row] for row in rows],
        }
