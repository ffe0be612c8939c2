"""`FinalGateProbe`: the gates of a gated adapter at the end of training, written as ``final_gates.json``.

When training ends (or when `measure` is called on a trained model), in eval mode and without autograd, the
probe runs the model on up to ``max_batches`` held-out batches (the datamodule's validation loss loader; its
training loader if it has none) and pools every gated module's gate over the real tokens ``S``
(``attention_mask = 1``), the prompt tokens ``P`` (``response_mask = 0``) and the response tokens ``R``:

    mean = sum_S g / |S|,    near_binary = |{g < 0.1}| / |S| + |{g > 0.9}| / |S|,
    prompt_mean = sum_P g / |P|,    response_mean = sum_R g / |R|,    H = mean_S H(g)  (nats)

for the group ``all`` and per module type (``type_q`` ...; pooled by `grouped_values`), with ``bins``-bin
histograms of the ``all`` gates on P and on R. The same three numbers per held-out row ``i`` (over the M gated
modules and the row's own tokens) go to ``per_row``, in the held-out loader's order (the same rows for every
run of one data setup), so two runs or two kinds of token compare row by row:

    near_binary_i = |{(m, t in S_i): g < 0.1 or g > 0.9}| / (M |S_i|),   prompt_mean_i, response_mean_i alike

``token_variance`` splits the variance of the gates on S into across tokens within a module and across
modules (`gatera_lab.diagnostics.token_variance`): its ``token_share`` near 0 means the gates act as a static
switch per module, not per token.

Then the prompts of the first ``prompt_rows`` held-out rows are continued greedily for ``prompt_new_tokens``
tokens (`trace_generation`): ``prompts`` keeps each one's prefill mean (its prompt pass) and decode mean (the
passes of the generated tokens). Last, a greedy generation from the probe prompt keeps its prefill and decode
means and the layer-by-token gate matrix for a heatmap (``probe``). Ungated models are skipped; the file
goes to the run's log folder, atomically, and the statistics stay in ``result`` for the caller.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from gatera_lab.diagnostics.gate_capture import GateCapture, gated_layers
from gatera_lab.diagnostics.gate_statistics import HIGH, LOW, binary_entropy, grouped_values, summarize
from gatera_lab.diagnostics.generation_trace import trace_generation
from gatera_lab.diagnostics.prefill_decode_monitor import DEFAULT_PROBE
from gatera_lab.diagnostics.step_diagnostic import check_positive, diagnosed_model
from gatera_lab.diagnostics.token_variance import stacked_real_gates, token_variance_split
from gatera_lab.evaluation.prompt_format import render_prompt
from gatera_lab.io.atomic_write import write_json_atomic
from gatera_lab.io.run_folder import run_folder
from gatera_lab.models.fsdp2_sharding import gathered_weights

FILENAME = "final_gates.json"
ROW_STATISTICS = ("near_binary", "prompt_mean", "response_mean")


def held_out_batches(datamodule: Any, max_batches: int) -> list[dict[str, Tensor]]:
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


def row_statistics(gates: dict[str, Tensor], real: Tensor, response: Tensor) -> dict[str, Tensor]:
    """Per row of the batch: near-binary share, prompt mean and response mean over every module (see above).

    Args:
        gates: module name -> gate (B, T).
        real: (B, T) bool, the real tokens; response: (B, T) bool, the response tokens (within ``real``).
    Returns: `ROW_STATISTICS` -> (B,) float64 (NaN for a row without such tokens).
    """
    stacked = torch.stack([gate.detach().double() for gate in gates.values()])  # (M, B, T)
    real, response = real.to(stacked.device), response.to(stacked.device)
    near = ((stacked < LOW) | (stacked > HIGH)).double()  # (M, B, T)

    def row_means(values: Tensor, mask: Tensor) -> Tensor:  # (M, B, T), (B, T) -> (B,)
        count = mask.sum(1).double() * stacked.shape[0]  # (B,)
        total = (values * mask).sum((0, 2))  # (B,)
        return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, math.nan))

    return {
        "near_binary": row_means(near, real),
        "prompt_mean": row_means(stacked, real & ~response),
        "response_mean": row_means(stacked, response),
    }


def _rounded(values: list[float]) -> list[float | None]:
    """``values`` to 5 decimals, NaN as None (`_finite`)."""
    return [_finite(round(value, 5)) for value in values]


def _finite(value: float) -> float | None:
    """``value``, or None where it is NaN (strict JSON has no NaN)."""
    return value if math.isfinite(value) else None


def _summary(values: Tensor) -> dict[str, float | None]:
    summary = summarize(values)
    numbers = {
        "count": summary.count,
        "mean": summary.mean,
        "std": summary.std,
        "frac_low": summary.frac_low,
        "frac_high": summary.frac_high,
        "near_binary": summary.near_binary,
        "entropy": float(binary_entropy(values).mean()) if values.numel() else math.nan,
    }
    return {key: _finite(value) for key, value in numbers.items()}


def _histogram(values: Tensor, bins: int) -> list[int]:
    counts, _ = np.histogram(values.double().cpu().numpy(), bins=bins, range=(0.0, 1.0))
    return [int(count) for count in counts]


class FinalGateProbe(Callback):
    """Writes the end-of-training gate statistics, per row and pooled, to ``final_gates.json``."""

    def __init__(
        self,
        max_batches: int = 8,
        prompt_rows: int = 16,
        prompt_new_tokens: int = 8,
        probe_prompt: str = DEFAULT_PROBE,
        max_new_tokens: int = 16,
        bins: int = 20,
    ) -> None:
        """
        Args:
            max_batches: held-out batches to pool the gate statistics over.
            prompt_rows: held-out rows whose prompts are continued for the prefill / decode means.
            prompt_new_tokens: tokens generated from each of those prompts (greedy; stops at end-of-sequence).
            probe_prompt: the instruction of the heatmap's probe generation (in the LLM-Adapters template).
            max_new_tokens: tokens the probe generates.
            bins: histogram bins on [0, 1].
        """
        owner = type(self).__name__
        self.max_batches = check_positive(owner, "max_batches", max_batches)
        self.prompt_rows = check_positive(owner, "prompt_rows", prompt_rows)
        self.prompt_new_tokens = check_positive(owner, "prompt_new_tokens", prompt_new_tokens)
        self.probe_prompt = probe_prompt
        self.max_new_tokens = max_new_tokens
        self.bins = check_positive(owner, "bins", bins)
        self.written: Path | None = None
        self.result: dict[str, Any] | None = None  # the statistics of the last on_train_end, as written

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = diagnosed_model(pl_module)
        if not gated_layers(model):
            return
        with gathered_weights(model):  # every process enters (FSDP2); rank zero then measures alone
            if not trainer.is_global_zero:
                return
            self.result = {
                **self.measure(model, trainer.datamodule, pl_module.device),
                "step": trainer.global_step,
            }
        self.written = run_folder(trainer) / FILENAME  # not trainer.log_dir: it broadcasts (rank 0 only here)
        write_json_atomic(self.written, self.result)

    def measure(self, model: nn.Module, datamodule: Any, device: torch.device) -> dict[str, Any]:
        """Every statistic of the module docstring for ``model`` on ``datamodule``'s held-out rows."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                batches = held_out_batches(datamodule, self.max_batches)
                statistics = self.statistics(model, batches, device)
                tokenizer = getattr(datamodule, "tokenizer", None)
                if tokenizer is not None:
                    statistics["prompts"] = self.prompt_generations(model, tokenizer, batches)
                    statistics["probe"] = self.probe(model, tokenizer)
        finally:
            model.train(was_training)
        return statistics

    def statistics(self, model: nn.Module, batches: list[dict[str, Tensor]], device: torch.device) -> dict:
        """Pooled and per-row gate statistics of ``batches`` (see the module docstring)."""
        capture = GateCapture(model)
        pooled: dict[str, dict[str, list[Tensor]]] = {}  # group -> {"all"|"prompt"|"response": values}
        per_row: dict[str, list[float]] = {key: [] for key in ROW_STATISTICS}
        # module name -> per batch, the module's gates on that batch's real tokens (n_b,)
        per_module: dict[str, list[Tensor]] = {}
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
            for name, gate in gates.items():
                per_module.setdefault(name, []).append(gate.detach()[real].cpu())
            for key, values in row_statistics(gates, real, response).items():
                per_row[key] += values.tolist()
            for part, mask in masks.items():
                for group, values in grouped_values(gates, mask).items():  # values (N,)
                    if group == "all" or group.startswith("type_"):
                        pooled.setdefault(group, {}).setdefault(part, []).append(values.cpu())
        groups, histograms = {}, None
        for group, parts in pooled.items():
            values = {part: torch.cat(chunks) for part, chunks in parts.items()}
            groups[group] = {
                **_summary(values["all"]),
                "prompt_mean": _finite(summarize(values["prompt"]).mean),
                "response_mean": _finite(summarize(values["response"]).mean),
            }
            if group == "all":
                histograms = {part: _histogram(values[part], self.bins) for part in ("prompt", "response")}
        return {
            "rows": len(per_row["near_binary"]),
            "modules": len(gated_layers(model)),
            "groups": groups,
            "per_row": {key: _rounded(values) for key, values in per_row.items()},
            "token_variance": {
                key: _finite(value)
                for key, value in token_variance_split(stacked_real_gates(per_module)).items()
            },
            "histogram": None if histograms is None else {"bins": self.bins, **histograms},
        }

    def prompt_generations(self, model: nn.Module, tokenizer: Any, batches: list[dict[str, Tensor]]) -> dict:
        """Prefill and decode means of greedy continuations of the first ``prompt_rows`` held-out prompts."""
        prefill, decode = [], []
        for batch in batches:
            real = batch["attention_mask"] != 0  # (B, T)
            prompt = real & (batch["response_mask"] == 0)  # (B, T)
            for ids, mask in zip(batch["input_ids"], prompt, strict=True):
                if len(prefill) == self.prompt_rows:
                    break
                trace = trace_generation(
                    model, tokenizer, ids[mask], self.prompt_new_tokens
                )  # ids[mask] (P,)
                prefill.append(trace.prefill_mean)
                decode.append(trace.decode_mean)
        return {
            "new_tokens": self.prompt_new_tokens,
            "prefill_mean": _rounded(prefill),
            "decode_mean": _rounded(decode),
        }

    def probe(self, model: nn.Module, tokenizer: Any) -> dict[str, Any]:
        """Prefill and decode means of a greedy generation from the probe prompt, and its layer x token gates."""
        trace = trace_generation(model, tokenizer, render_prompt(self.probe_prompt), self.max_new_tokens)
        labels, rows = trace.rows("layer")  # rows (L, T)
        return {
            "prompt": self.probe_prompt,
            "prefill_mean": trace.prefill_mean,
            "decode_mean": _finite(trace.decode_mean),
            "n_prompt": trace.n_prompt,
            "tokens": trace.tokens,
            "layers": labels,
            "layer_gates": [[round(float(value), 4) for value in row] for row in rows],
        }
