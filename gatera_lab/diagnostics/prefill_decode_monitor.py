"""`PrefillDecodeMonitor`: gates on prompt (prefill) tokens versus response (decoded) tokens.

GateRA's claimed behaviour is low gates on the prompt and higher gates on the response. Two views:

- training (every ``every_n_steps`` steps): from the batch's ``response_mask``, the mean gate on real prompt
  tokens and on response tokens, ``gates/<group>/prompt_mean`` and ``gates/<group>/response_mean`` for the
  groups ``all`` and ``type_<kind>``, and ``gates/all/response_minus_prompt``; on the steps that are also
  probe steps, the batch's prompt/response gate histograms per module type (`gate_histogram_figure`) as the
  image ``gates/train_histograms`` and ``<png_dir>/train_gates_step<step>.png``;
- generation (when training starts, after every ``probe_every_n_steps``-th optimizer step, and at the end of
  each validation; written at the number of optimizer steps done): a greedy generation
  from a fixed probe prompt (`trace_generation`), written as ``gates/probe/prefill_mean`` (the prompt pass),
  ``gates/probe/decode_mean`` (the passes of the generated tokens), the picture of `gate_figure` as the
  TensorBoard image ``gates/probe_heatmap``, and as ``<png_dir>/gates_step<step>.png``.

The probe's tokenizer is the datamodule's ``tokenizer`` attribute, else ``tokenizer`` (a name or folder),
else the module's ``hparams.model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch import Tensor

from gatera_lab.diagnostics.gate_capture_diagnostic import GateCaptureDiagnostic
from gatera_lab.diagnostics.gate_statistics import grouped_values, prompt_response_means
from gatera_lab.diagnostics.generation_trace import trace_generation
from gatera_lab.diagnostics.plotting import figure_rgb, gate_figure, gate_histogram_figure, save_png
from gatera_lab.diagnostics.step_diagnostic import (
    batch_tensor,
    check_positive,
    diagnosed_model,
)
from gatera_lab.diagnostics.tensorboard_output import log_image, log_scalars
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.prompt_format import render_prompt
from gatera_lab.io.run_folder import run_folder
from gatera_lab.models.fsdp2_sharding import gathered_weights

DEFAULT_PROBE = "Is the sky blue on a clear day? Answer format: true/false"


class PrefillDecodeMonitor(GateCaptureDiagnostic):
    """Mean gates on prompt vs response tokens in training, and on prefill vs decode passes of a probe."""

    def __init__(
        self,
        every_n_steps: int = 50,
        probe_every_n_steps: int | None = 500,
        probe_on_validation_end: bool = True,
        probe_prompt: str = DEFAULT_PROBE,
        probe_template: bool = True,
        max_new_tokens: int = 16,
        rows: str = "module",
        write_png: bool = True,
        png_dir: str | None = None,
        tokenizer: str | None = None,
    ) -> None:
        """
        Args:
            every_n_steps: measure the training batch's prompt/response gates on steps 0, N, 2N, ...
            probe_every_n_steps: run the generation probe when training starts and after every N-th optimizer
                step (``None``: never during training); training steps that are multiples of N also draw the
                batch's gate histograms.
            probe_on_validation_end: also run the probe after every validation (not the sanity check).
            probe_prompt: the probe's instruction (or whole prompt with ``probe_template: false``).
            probe_template: wrap ``probe_prompt`` in the LLM-Adapters instruction template, as in training.
            max_new_tokens: tokens the probe generates (greedy; it stops earlier at end-of-sequence).
            rows: heatmap rows: ``module`` (one per gated module) or ``layer`` (mean over a layer's modules).
            write_png: also write each probe picture as a PNG file.
            png_dir: the PNG folder; default ``<trainer.log_dir>/gate_pictures``.
            tokenizer: tokenizer name or folder when the datamodule has no ``tokenizer`` attribute.
        """
        super().__init__(every_n_steps)
        if probe_every_n_steps is not None:
            check_positive(type(self).__name__, "probe_every_n_steps", probe_every_n_steps)
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ConfigError(
                f"option 'PrefillDecodeMonitor.max_new_tokens' must be >= 0, got {max_new_tokens!r}"
            )
        if rows not in ("module", "layer"):
            raise ConfigError(f"option 'PrefillDecodeMonitor.rows' must be 'module' or 'layer', got {rows!r}")
        self.probe_every_n_steps = probe_every_n_steps
        self.probe_on_validation_end = probe_on_validation_end
        self.probe_prompt = probe_prompt
        self.probe_template = probe_template
        self.max_new_tokens = max_new_tokens
        self.rows = rows
        self.write_png = write_png
        self.png_dir = png_dir
        self.tokenizer_name = tokenizer
        self._tokenizer = None
        self._last_probe_step = -1
        self.written: list[Path] = []

    # ------------------------------------------------------------------ training batches
    def begin(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any) -> None:
        if batch_tensor(batch, "response_mask") is not None:
            super().begin(trainer, pl_module, batch)

    def finish(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any) -> None:
        capture = self.take_capture()
        if capture is None:
            return
        gates = capture.first_gates()
        first = next(iter(gates.values()), None)
        attention = batch_tensor(batch, "attention_mask", like=first)
        response = batch_tensor(batch, "response_mask", like=first)
        if not gates:
            return
        if attention is None:
            attention = response.new_ones(response.shape)
        scalars: dict[str, float] = {}
        for group, (prompt_mean, response_mean) in prompt_response_means(gates, attention, response).items():
            if not group.startswith("layer_"):
                scalars[f"gates/{group}/prompt_mean"] = prompt_mean
                scalars[f"gates/{group}/response_mean"] = response_mean
        scalars["gates/all/response_minus_prompt"] = (
            scalars["gates/all/response_mean"] - scalars["gates/all/prompt_mean"]
        )
        log_scalars(trainer, scalars, self.step)
        every = self.probe_every_n_steps
        if every is not None and self.step % every == 0 and trainer.is_global_zero:
            self._histogram_picture(trainer, gates, attention, response)

    def _histogram_picture(
        self, trainer: L.Trainer, gates: dict[str, Tensor], attention: Tensor, response: Tensor
    ) -> None:
        """The batch's prompt and response gate histograms per module type, as an image and a PNG."""
        real = attention != 0  # (B, T)
        prompt = grouped_values(gates, real & (response == 0))
        answer = grouped_values(gates, real & (response != 0))
        groups = {
            group: (prompt[group].cpu().numpy(), answer[group].cpu().numpy())
            for group in prompt
            if not group.startswith("layer_")
        }
        figure = gate_histogram_figure(
            groups, f"training batch gates at step {self.step}: prompt vs response"
        )
        log_image(trainer, "gates/train_histograms", figure_rgb(figure), self.step)
        if self.write_png:
            self.written.append(
                save_png(figure, self._png_folder(trainer) / f"train_gates_step{self.step:07d}.png")
            )

    # ------------------------------------------------------------------ the generation probe
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.probe_every_n_steps is not None and self.is_gated(pl_module):
            self.probe(trainer, pl_module, trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every, step = self.probe_every_n_steps, trainer.global_step  # optimizer steps done, this one included
        if every is not None and step % every == 0 and self.is_gated(pl_module):
            self.probe(trainer, pl_module, step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.probe_on_validation_end and not trainer.sanity_checking and self.is_gated(pl_module):
            self.probe(trainer, pl_module, trainer.global_step)

    def prompt_text(self) -> str:
        if not self.probe_template:
            return self.probe_prompt
        return render_prompt(self.probe_prompt)

    def _resolve_tokenizer(self, trainer: L.Trainer, pl_module: L.LightningModule):
        if self._tokenizer is None:
            tokenizer = getattr(getattr(trainer, "datamodule", None), "tokenizer", None)
            name = self.tokenizer_name or getattr(pl_module, "hparams", {}).get("model")
            if tokenizer is None and name is None:
                raise ConfigError(
                    "PrefillDecodeMonitor needs a tokenizer for its probe: the datamodule has no 'tokenizer' "
                    "attribute and the module no 'model' hyper-parameter; set option 'tokenizer'"
                )
            if tokenizer is None:
                from gatera_lab.models.model_loading import load_tokenizer

                tokenizer = load_tokenizer(name)
            self._tokenizer = tokenizer
        return self._tokenizer

    def probe(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> None:
        """Generate from the probe prompt, log its prefill/decode means and picture (once per step)."""
        if step == self._last_probe_step:
            return
        self._last_probe_step = step
        model, tokenizer = diagnosed_model(pl_module), self._resolve_tokenizer(trainer, pl_module)
        with gathered_weights(model):  # a sharded model's forwards stay local (`fsdp2_sharding`)
            trace = trace_generation(model, tokenizer, self.prompt_text(), self.max_new_tokens)
        log_scalars(
            trainer,
            {
                "gates/probe/prefill_mean": trace.prefill_mean,
                "gates/probe/decode_mean": trace.decode_mean,
                "gates/probe/generated_tokens": float(trace.n_generated),
            },
            step,
        )
        if not trainer.is_global_zero:
            return
        figure = gate_figure(trace, self.rows)
        log_image(trainer, "gates/probe_heatmap", figure_rgb(figure), step)
        if self.write_png:
            self.written.append(save_png(figure, self._png_folder(trainer) / f"gates_step{step:07d}.png"))

    def _png_folder(self, trainer: L.Trainer) -> Path:
        if self.png_dir:
            return Path(self.png_dir)
        return run_folder(trainer) / "gate_pictures"
