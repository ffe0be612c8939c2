"""`GateraTrainerMixin`: GateRA training in a Hugging Face `Trainer` (or any subclass, TRL's included).

The objective is the one `gatera_lab.training.module.GateraModule` trains:

    L = L_task + lambda * mean_{l,t} H(g_lt),    H(g) = -g log g - (1 - g) log(1 - g),

``L_task`` the loss the Trainer (or its subclass) computes from ``labels`` as it always does, ``lambda`` the
method's ``entropy_weight`` and the mean taken over the adapted modules ``l`` and the real tokens ``t``
(``attention_mask = 1``; every token where a batch has no ``attention_mask``, as padding-free batches do).
The gate logits of the step's forward are collected for that forward only
(`gatera_lab.adapters.token_gate.capture_gate_logits`) and averaged by
`gatera_lab.adapters.token_gate.masked_gate_entropy`, the functions `GateraModule.compute_losses` uses. Where
the Trainer normalises its loss over the whole accumulated batch (``num_items_in_batch``) and so skips its
division by the accumulation steps, the entropy term is divided by them here: either way each micro-batch's
term weighs ``1 / accumulation steps``, as under Lightning's ``accumulate_grad_batches``. Evaluation computes
the task loss only (Lightning's ``val/loss``).

Logged through the Trainer's own ``log`` (the console, ``log_history`` and every ``report_to`` integration;
TensorBoard adds ``train/``), at each logging step: ``gate_entropy`` (the mean ``H`` of the training
micro-batches since the last log), ``entropy_term`` (``lambda`` times it), ``task_loss`` (``loss`` minus that
term), and the gate statistics of the latest micro-batch on the main process, captured by
`gatera_lab.diagnostics.GateCapture` and named as `gatera_lab.diagnostics.GateStatisticsMonitor` names them:
``gates/<group>/mean``, ``/std``, ``/frac_low``, ``/frac_high``, ``/near_binary`` and ``gates/dead_adapters``.

``save_model`` (and so every checkpoint the Trainer writes) stores the adapter only, as ``gatera-lab export``
does (`gatera_lab.integrations.adapter_folder`). Resuming from such a checkpoint loads its adapter tensors
back; optimizer, scheduler and RNG states are the Trainer's as usual.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase, Trainer

from gatera_lab.adapters.adapter_method import AdapterMethod, adapter_layers
from gatera_lab.adapters.token_gate import capture_gate_logits, masked_gate_entropy
from gatera_lab.diagnostics.gate_capture import GateCapture
from gatera_lab.diagnostics.gate_statistics import dead_adapters, grouped_summaries
from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.integrations.adapter_folder import load_adapter_checkpoint, save_adapter_folder
from gatera_lab.training.optimization import adapter_parameter_groups

GateStatistics = Literal["none", "all", "types", "layers"]
STATISTICS_GROUPS = {  # the prefixes of the `grouped_summaries` groups each setting logs
    "none": (),
    "all": ("all",),
    "types": ("all", "type_"),
    "layers": ("all", "type_", "layer_"),
}


class NoGateLogitsError(GateraError, RuntimeError):
    """A gated model's training forward handed over no gate logits, so ``lambda * H`` cannot be computed."""


def trained_method(model: nn.Module | None) -> AdapterMethod:
    """The one `AdapterMethod` whose layers ``model`` holds.

    Raises:
        ConfigError: ``model`` has no gatera-lab adapter layers, or layers of more than one method.
    """
    methods = {id(layer.method): layer.method for _, layer in adapter_layers(model)} if model else {}
    if not methods:
        raise ConfigError(
            f"the Trainer's model ({type(model).__name__}) has no gatera-lab adapters: apply a method first, "
            "e.g. build_method('hira_gate', entropy_weight=0.01).apply(model), then hand the model to the Trainer"
        )
    if len(methods) > 1:
        raise ConfigError(
            f"the Trainer's model holds adapter layers of {len(methods)} methods "
            f"({', '.join(sorted(method.name for method in methods.values()))}); apply one method only"
        )
    return next(iter(methods.values()))


class GateraTrainerMixin:
    """Adds the GateRA entropy regulariser, gate logging and adapter-only saving to a `transformers.Trainer`.

    Put it first among the bases: ``class MyTrainer(GateraTrainerMixin, SFTTrainer): ...``. The model handed
    to the Trainer must already hold a gatera-lab adapter (``build_method(...).apply(model)``).
    """

    def __init__(
        self,
        *args: Any,
        gate_statistics: GateStatistics = "types",
        base_model_name_or_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """
        Args:
            *args: the Trainer's positional arguments.
            gate_statistics: which gate statistics each log holds: ``none``, ``all`` (pooled over every
                adapted module), ``types`` (also per module type: q, k, v, up, down) or ``layers`` (also per
                decoder layer).
            base_model_name_or_path: the base model the saved adapter names; None: the model's own
                ``name_or_path`` (what ``from_pretrained`` loaded it from).
            **kwargs: the Trainer's keyword arguments.

        Raises:
            ConfigError: the model has no gatera-lab adapters, or ``gate_statistics`` is unknown.
        """
        if gate_statistics not in STATISTICS_GROUPS:
            raise ConfigError(
                f"option 'gate_statistics' must be 'none', 'all', 'types' or 'layers', got {gate_statistics!r}"
            )
        super().__init__(*args, **kwargs)
        self.gatera_method = trained_method(self.model)
        self.gate_statistics = gate_statistics
        self.base_model_name_or_path = base_model_name_or_path
        gated = self.gatera_method.gate
        self._gate_capture = GateCapture(self.model) if gated and gate_statistics != "none" else None
        # what `log` reports, gathered between two logs (the Trainer hands `log` nothing of the steps)
        self._entropy_sum = torch.zeros(())  # of the micro-batches' mean entropies
        self._entropy_count = torch.zeros(())
        self._latest_gates: tuple[dict[str, Tensor], Tensor | None] | None = None

    # ------------------------------------------------------------------ the loss
    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Tensor | int | None = None,
    ) -> Tensor | tuple[Tensor, Any]:
        """The parent's loss plus, in training and for a gated method, ``lambda * mean_{l,t} H(g_lt)``.

        Raises:
            NoGateLogitsError: a gated method with ``entropy_weight > 0`` whose forward ran no gate (the gates
                are forced, or the Trainer's forward does not reach the adapted model).
        """
        method = self.gatera_method
        if not (method.gate and model.training):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        token_mask = inputs.get("attention_mask")  # (B, T), or None: every token is real
        if self._gate_capture is not None:
            self._gate_capture.start()
        try:
            with capture_gate_logits(model) as gate_logits:
                loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        finally:
            if self._gate_capture is not None:
                self._gate_capture.stop()
        logits = gate_logits.latest()  # one (B, T) tensor per gate that ran
        if not logits:
            if method.entropy_weight > 0:
                raise NoGateLogitsError(
                    f"method {method.name!r} has entropy_weight={method.entropy_weight} but the training "
                    "forward captured no gate logits: the gates were forced (forced_gate_value) or the model "
                    "the Trainer runs is not the one the method was applied to"
                )
        else:
            entropy = masked_gate_entropy(logits, token_mask)  # ()
            self._keep_for_log(entropy, token_mask)
            if method.entropy_weight > 0:
                term = method.entropy_weight * entropy
                if self._loss_scaled_for_accumulation(num_items_in_batch):
                    term = term / self._accumulation_steps()
                loss = loss + term.to(loss.dtype)
        return (loss, outputs) if return_outputs else loss

    def _loss_scaled_for_accumulation(self, num_items_in_batch: Tensor | int | None) -> bool:
        """Whether the Trainer takes the loss as already normalised over the accumulated batch (its own rule
        in ``training_step``), so that it will not divide it by the accumulation steps."""
        if self.loss_is_scaled_for_ga is not None:
            return bool(self.loss_is_scaled_for_ga)
        return bool(
            (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or self.compute_loss_func
        )

    def _accumulation_steps(self) -> int:
        return int(
            getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
        )

    # ------------------------------------------------------------------ optimisation
    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        """The names of the parameters the Trainer's optimizer decays: the matrices only, as `GateraModule`.

        The Trainer's own rule decays every parameter but biases and norms; this one is
        `gatera_lab.training.optimization.adapter_parameter_groups`'s, so DoRA's magnitudes and the gate bias
        are not decayed either. The Trainer builds its optimizer (``optim``, ``weight_decay``) from these
        names.
        """
        named = list(model.named_parameters())
        groups = adapter_parameter_groups(named, weight_decay=1.0)
        decayed = {
            id(parameter) for group in groups if group["weight_decay"] > 0 for parameter in group["params"]
        }
        return [name for name, parameter in named if id(parameter) in decayed]

    # ------------------------------------------------------------------ logging
    def _keep_for_log(self, entropy: Tensor, token_mask: Tensor | None) -> None:
        """Add the micro-batch's entropy to the running mean; keep its gates (detached) for the statistics."""
        self._entropy_sum = self._entropy_sum.to(entropy.device) + entropy.detach().float()
        self._entropy_count = self._entropy_count.to(entropy.device) + 1
        if self._gate_capture is not None:
            mask = None if token_mask is None else token_mask.detach()  # (B, T)
            self._latest_gates = (self._gate_capture.first_gates(), mask)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the gate entropy and statistics to the Trainer's training logs, then log as the parent does."""
        if "loss" in logs and self.gatera_method.gate:
            logs = {**logs, **self._gate_logs(logs["loss"])}
        super().log(logs, *args, **kwargs)

    def _gate_logs(self, loss: float) -> dict[str, float]:
        """The scalars of `log` for the micro-batches since the last log; resets the running mean."""
        totals = torch.stack([self._entropy_sum, self._entropy_count])  # (2,)
        if self.args.world_size > 1:  # every process logs at the same steps
            totals = self.accelerator.reduce(totals.to(self.args.device), reduction="sum")
        self._entropy_sum = torch.zeros_like(self._entropy_sum)
        self._entropy_count = torch.zeros_like(self._entropy_count)
        scalars: dict[str, float] = {}
        if totals[1] > 0:
            entropy = float(totals[0] / totals[1])
            term = self.gatera_method.entropy_weight * entropy
            scalars.update(gate_entropy=entropy, entropy_term=term, task_loss=loss - term)
        if self._latest_gates is not None:
            gates, mask = self._latest_gates
            self._latest_gates = None
            wanted = STATISTICS_GROUPS[self.gate_statistics]
            for group, summary in grouped_summaries(gates, mask).items():
                if group.startswith(wanted):
                    scalars.update(summary.as_scalars(f"gates/{group}"))
            scalars["gates/dead_adapters"] = float(len(dead_adapters(gates, mask)))
        return scalars

    # ------------------------------------------------------------------ saving
    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Write the adapter (not the base) to ``output_dir``, in the format of ``gatera-lab export``.

        Ungated LoRA, DoRA and HiRA in the Hugging Face PEFT format, every other method in the gatera format,
        with the tokenizer (``processing_class``) beside it; see `gatera_lab.integrations.adapter_folder`.

        Raises:
            ConfigError: FSDP is enabled (its parameters are shards), or no base model name is known.
        """
        output_dir = output_dir or self.args.output_dir
        if self.is_fsdp_enabled:
            raise ConfigError(
                "save_model writes the adapter from unsharded parameters; under FSDP save with the "
                "Trainer's own methods and export with `gatera-lab export` instead"
            )
        if self.args.should_save:
            model = self.accelerator.unwrap_model(self.model)
            tokenizer = self.processing_class
            save_adapter_folder(
                model,
                self.gatera_method,
                output_dir,
                self._base_model_name(model),
                tokenizer if isinstance(tokenizer, PreTrainedTokenizerBase) else None,
            )
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _base_model_name(self, model: nn.Module) -> str:
        config = getattr(model, "config", None)
        name = self.base_model_name_or_path or getattr(config, "_name_or_path", "") or ""
        if not name:
            raise ConfigError(
                "the saved adapter must name its base model, and the Trainer's model has no name_or_path "
                "(it was not loaded with from_pretrained): pass base_model_name_or_path= to the trainer"
            )
        return str(name)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        """Resume: copy the adapter tensors of a checkpoint folder written by `save_model` into the model."""
        model = self.accelerator.unwrap_model(model if model is not None else self.model)
        load_adapter_checkpoint(model, resume_from_checkpoint)


class GateraTrainer(GateraTrainerMixin, Trainer):
    """`transformers.Trainer` with GateRA's entropy regulariser, gate logging and adapter-only saving."""
