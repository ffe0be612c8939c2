"""`GateraModule`: fine-tunes a Hugging Face causal LM with one pluggable `AdapterMethod`.

Loss: ``L = L_task + lambda * mean_{l,t} H(g_lt)``, the causal-LM loss (on response tokens, or on the whole
sequence) plus the gate entropy regulariser over real tokens when the method is gated
(``lambda = method.entropy_weight``). Under DDP both means are over the tokens of the global batch
(`gatera_lab.training.global_token_mean`): W processes with one batch each get the gradient that one process
gets from the W batches together. The gate logits of the step's forward are collected for that forward only
(`gatera_lab.adapters.token_gate.capture_gate_logits`). Evaluation scores every row once
(`DistributedEvalSampler`) and sums the per-task counts over processes
(`gatera_lab.evaluation.multiple_choice_evaluation`). AdamW updates the adapter parameters only. Checkpoints
hold the adapter tensors only (`gatera_lab.training.adapter_checkpoint_hooks`); the frozen base is reloaded
from ``model``. Gradient clipping by norm holds under sharding too (`gatera_lab.training.sharded_clipping`).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from gatera_lab.adapters.adapter_method import (
    AdapterMethod,
    AdapterSummary,
    adapter_parameters,
    named_adapter_parameters,
)
from gatera_lab.adapters.precision_policy import DTYPES, check_precision
from gatera_lab.adapters.token_gate import capture_gate_logits, masked_gate_entropy
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import Protocol, TaskAccuracy
from gatera_lab.evaluation.choice_items import is_eval_batch
from gatera_lab.evaluation.multiple_choice_evaluation import MultipleChoiceEvaluation
from gatera_lab.models.selected_logits import logits_at, target_log_probs
from gatera_lab.registry import build_method
from gatera_lab.training import global_token_mean
from gatera_lab.training.adapter_checkpoint_hooks import AdapterCheckpointHooks
from gatera_lab.training.causal_lm_loss import LossOn, loss_targets, target_count, target_loss
from gatera_lab.training.host_memory import HostMemoryHooks
from gatera_lab.training.layer_compilation import compile_decoder_layers
from gatera_lab.training.micro_batches import micro_batched_means
from gatera_lab.training.module_options import check_module_options
from gatera_lab.training.optimization import Schedule, build_optimizer, matrix_parameter_ids
from gatera_lab.training.sharded_clipping import sharded_gradient_clipper
from gatera_lab.training.sharded_evaluation_hooks import ShardedEvaluationHooks


class GateraModule(HostMemoryHooks, ShardedEvaluationHooks, AdapterCheckpointHooks, MultipleChoiceEvaluation):
    """A causal LM, frozen, with one adapter method injected; trains the adapter and (if gated) its gates."""

    def __init__(
        self,
        method: AdapterMethod | str = "hira_gate",
        model: str = "smollm2-135m-instruct",
        learning_rate: float = 1e-3,
        gate_learning_rate: float | None = None,
        weight_decay: float = 0.0,
        warmup_steps: int = 100,
        lr_schedule: Schedule = "linear",
        loss_on: LossOn = "response",
        dtype: str = "float32",
        gradient_checkpointing: bool = False,
        eval_protocol: Protocol = "likelihood",
        generation_max_new_tokens: int = 32,
        generation_num_beams: int = 1,
        micro_batch_tokens: int | None = None,
        compile: bool = False,
    ) -> None:
        """
        Args:
            method: an `AdapterMethod` (``class_path`` + ``init_args`` in YAML) or a registered name.
            model: a Hugging Face model id, a local folder, or ``smollm2-135m-instruct`` (embedded).
            learning_rate: peak AdamW learning rate.
            gate_learning_rate: peak learning rate of the gates' parameters (``token_gate``), under the same
                schedule; ``null``: ``learning_rate``.
            weight_decay: AdamW weight decay on adapter matrices (never on gate biases or magnitudes).
            warmup_steps: optimizer steps of linear warm-up.
            lr_schedule: decay after warm-up: ``linear`` to 0, ``cosine`` to 0, or ``constant``.
            loss_on: ``response`` (loss on response tokens only) or ``all`` (every real token).
            dtype: storage dtype of the frozen base model: float32, bfloat16 or float16. Adapter and gate
                parameters stay float32 whatever it is; compute follows ``--trainer.precision``
                (``bf16-mixed`` on GPU). Supported pairs: `gatera_lab.adapters.precision_policy`, docs/gpu.md.
            gradient_checkpointing: recompute activations in backward to save memory.
            eval_protocol: how ``test`` answers multiple-choice batches: ``likelihood`` (argmax of the
                candidate labels' log-likelihood; deterministic, fast) or ``generation`` (the papers'
                protocol: generate, take the first match of the task's label set; no match is wrong).
                Validation during ``fit`` always uses ``likelihood``.
            generation_max_new_tokens: response length for ``generation`` (the papers use 32).
            generation_num_beams: beams for ``generation`` (the papers use 4; 1 is greedy).
            micro_batch_tokens: the most token slots (rows x columns) one training or validation forward
                holds; a larger batch runs as micro-batches of whole rows (`micro_batches`), each
                recomputed in backward, with the loss still the mean over the whole batch's tokens (so the
                longest batches do not set the peak memory; they cost one more forward). ``null``: no cap.
            compile: compile the decoder layers with ``torch.compile`` (ungated methods only; see
                `gatera_lab.training.layer_compilation` for why gated ones are refused, and docs/benchmarks.md
                for what it gave on a CPU).
        """
        super().__init__()
        if isinstance(method, str):
            method = build_method(method)
        if not isinstance(method, AdapterMethod):
            raise ConfigError(
                f"option 'model.method' must be an AdapterMethod or a method name, got {method!r}"
            )
        check_module_options(method, dtype, eval_protocol, loss_on, micro_batch_tokens, gate_learning_rate)
        self.save_hyperparameters(ignore=["method"])
        self.hparams["method_name"] = method.name
        self.hparams["method_hparams"] = method.hparams()
        self.method = method
        self.model: torch.nn.Module | None = None
        self.adapter_summary: AdapterSummary | None = None
        self.matrix_ids: set[int] | None = None  # weight-decayed adapter tensors (`optimization`)
        self.strict_loading = False  # checkpoints hold the adapter only
        self.accuracy: dict[str, TaskAccuracy] = {}  # per stage ("val", "test"), built at epoch start
        self.test_results: dict[str, Any] | None = None
        self.test_outputs: list = []  # test batches of this process, turned into rows at the epoch end

    # ------------------------------------------------------------------ model
    def configure_model(self) -> None:
        """Load the frozen base and inject the adapter; runs more than once under some strategies. Under
        ``ModelParallelStrategy`` shard with FSDP2 (`gatera_lab.models.fsdp2_sharding`, configs/fsdp.yaml)."""
        if self.model is not None:
            return
        from gatera_lab.models.fsdp2_sharding import shard_model
        from gatera_lab.models.model_loading import load_causal_lm

        if self._trainer is not None:  # float32 adapters need a mixed (or 32-true) precision: refuse the rest
            check_precision(self.hparams.dtype, str(self._trainer.precision), self._trainer.state.fn == "fit")

        model = load_causal_lm(self.hparams.model, dtype=DTYPES[self.hparams.dtype])
        self.attach_model(model)
        mesh = getattr(self, "_device_mesh", None)  # set by Lightning's ModelParallelStrategy
        if mesh is not None:
            shard_model(self.model, mesh)

    def attach_model(self, model: torch.nn.Module) -> None:
        """Inject the method into ``model`` (already loaded) and make it this module's model."""
        self.adapter_summary = self.method.apply(model)
        self.matrix_ids = matrix_parameter_ids(adapter_parameters(model))  # before a strategy shards them
        if self.hparams.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.hparams.get("compile"):
            compile_decoder_layers(model, self.method.gate)
        self.model = model.train(self.training)
        rank_zero_info(str(self.adapter_summary))

    @property
    def gated(self) -> bool:
        return self.method.gate

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Next-token logits (B, T, V)."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    # ------------------------------------------------------------------ steps
    def compute_losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``task`` (causal-LM loss), ``entropy`` (mean gate entropy, gated only) and ``loss`` (their sum).

        The output layer runs at the S target positions only (`gatera_lab.models.selected_logits.logits_at`):
        the forward's logits are (1, S, V), not (B, T, V). No key/value cache is built. A batch of more than
        ``micro_batch_tokens`` token slots runs in micro-batches (`micro_batches.micro_batched_means`).
        """
        cap = self.hparams.micro_batch_tokens
        if cap is not None and batch["input_ids"].numel() > cap:
            sums = functools.partial(self._token_means, mean=False)
            task, entropy = micro_batched_means(batch, cap, sums, self.hparams.loss_on)
        else:
            task, entropy = self._token_means(batch, mean=True)
        losses = {"task": task, "loss": task}
        if entropy is not None:
            losses["entropy"] = entropy
            if self.method.entropy_weight > 0:
                losses["loss"] = task + self.method.entropy_weight * entropy
        return losses

    def _token_means(self, batch: dict[str, Tensor], mean: bool) -> tuple[Tensor, Tensor | None]:
        """The task loss and the gate entropy of one forward: their means (``mean``) or their sums.

        Sums: the task loss summed over target tokens, the entropy summed over real tokens (and averaged over
        modules), so that micro-batches add up to the batch's means.
        """
        targets = loss_targets(
            batch["input_ids"], batch["attention_mask"], batch["response_mask"], self.hparams.loss_on
        )
        with (
            capture_gate_logits(self.model) as gate_logits,
            logits_at(self.model, targets.rows, targets.positions),
        ):
            target_logits = self.model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
            ).logits  # (1, S, V)
        if mean:
            task = target_loss(target_logits, targets)
        else:
            task = -target_log_probs(target_logits, targets.tokens).sum()
        if not self.gated:
            return task, None
        entropy = masked_gate_entropy(gate_logits.latest(), batch["attention_mask"])
        return task, entropy if mean else entropy * (batch["attention_mask"] != 0).sum()

    def training_objective(self, batch: dict[str, Tensor], losses: dict[str, Tensor]) -> Tensor:
        """What ``training_step`` backpropagates: ``losses["loss"]`` (same value), with each mean's gradient
        scaled by this process's token share so that DDP's gradient average is the global batch's.

        The task loss is a mean over target tokens, the gate entropy one over real tokens (see
        `gatera_lab.training.global_token_mean`); one all-reduce of the two counts under DDP, none otherwise.
        """
        if global_token_mean.data_parallel_world_size() == 1:
            return losses["loss"]
        counts = torch.stack(
            [target_count(batch, self.hparams.loss_on), (batch["attention_mask"] != 0).sum()]
        )  # (2,)
        task_share, entropy_share = global_token_mean.global_token_shares(counts)
        objective = global_token_mean.scale_gradient(losses["task"], task_share)
        if "entropy" in losses and self.method.entropy_weight > 0:
            objective = objective + self.method.entropy_weight * global_token_mean.scale_gradient(
                losses["entropy"], entropy_share
            )
        return objective

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self.compute_losses(batch)
        batch_size = batch["input_ids"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=batch_size)
        self.log("train/task_loss", losses["task"], batch_size=batch_size)
        if "entropy" in losses:
            self.log("train/gate_entropy", losses["entropy"], batch_size=batch_size)
            self.log(
                "train/entropy_term",
                self.method.entropy_weight * losses["entropy"].detach(),
                batch_size=batch_size,
            )
        return self.training_objective(batch, losses)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        if is_eval_batch(batch):
            self._evaluate("val", batch, "likelihood")
            return
        losses = self.compute_losses(batch)
        batch_size = batch["input_ids"].shape[0]
        self.log(
            "val/loss",
            losses["task"],
            prog_bar=True,
            batch_size=batch_size,
            sync_dist=True,
            add_dataloader_idx=False,
        )
        if "entropy" in losses:
            self.log(
                "val/gate_entropy",
                losses["entropy"],
                batch_size=batch_size,
                sync_dist=True,
                add_dataloader_idx=False,
            )

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        if is_eval_batch(batch):
            self._evaluate("test", batch, self.hparams.eval_protocol)
            return
        losses = self.compute_losses(batch)
        self.log(
            "test/loss",
            losses["task"],
            batch_size=batch["input_ids"].shape[0],
            sync_dist=True,
            add_dataloader_idx=False,
        )

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, scheduler = build_optimizer(
            named_adapter_parameters(self.model),
            learning_rate=self.hparams.learning_rate,
            weight_decay=self.hparams.weight_decay,
            warmup_steps=self.hparams.warmup_steps,
            total_steps=int(self.trainer.estimated_stepping_batches),
            schedule=self.hparams.lr_schedule,
            matrix_ids=self.matrix_ids,
            gate_learning_rate=self.hparams.get("gate_learning_rate"),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """``trainer.gradient_clip_val`` by norm on every strategy: through the shards' own norm under FSDP
        (`gatera_lab.training.sharded_clipping`), Lightning's clipping elsewhere."""
        if gradient_clip_val and (gradient_clip_algorithm or "norm") == "norm":
            trained = [p for group in optimizer.param_groups for p in group["params"]]
            if (clipper := sharded_gradient_clipper(self.trainer.model, trained)) is not None:
                clipper(float(gradient_clip_val))
                return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
