"""GateraModule: the loss, the optimizer groups, adapter-only checkpoints and exact resumption."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from gatera_lab import CheckpointMismatchError, build_method
from gatera_lab.adapters.token_gate import capture_gate_logits, masked_gate_entropy, token_gates
from gatera_lab.training.causal_lm_loss import causal_lm_loss
from gatera_lab.training.module import GateraModule
from gatera_lab.training.optimization import adapter_parameter_groups
from tests.helpers.tiny_fit import fit_resumable, tiny_data


def make_module(model_dir, method="hira_gate", **kwargs) -> GateraModule:
    method_kwargs = {"r": 4, "alpha": 8, **kwargs.pop("method_kwargs", {})}
    module = GateraModule(
        method=build_method(method, **method_kwargs), model=str(model_dir), warmup_steps=0, **kwargs
    )
    module.configure_model()
    return module


def first_batch(model_dir, instruction_file) -> dict[str, torch.Tensor]:
    data = tiny_data(model_dir, instruction_file)
    data.setup("fit")
    return next(iter(data.train_dataloader()))


def test_loss_is_task_loss_plus_lambda_times_gate_entropy(tiny_model_dir, instruction_file):
    module = make_module(tiny_model_dir, method_kwargs={"entropy_weight": 0.3, "gate_weight_init_std": 0.1})
    batch = first_batch(tiny_model_dir, instruction_file)
    losses = module.compute_losses(batch)
    with capture_gate_logits(module.model) as gate_logits:
        logits = module(batch["input_ids"], batch["attention_mask"])
    task = causal_lm_loss(
        logits, batch["input_ids"], batch["attention_mask"], batch["response_mask"], "response"
    )
    entropy = masked_gate_entropy(gate_logits.latest(), batch["attention_mask"])
    torch.testing.assert_close(losses["task"], task)
    torch.testing.assert_close(losses["entropy"], entropy)
    torch.testing.assert_close(losses["loss"], task + 0.3 * entropy)
    assert len(gate_logits.latest()) == 2 * 5
    # nothing is left on the gates once the step's scope ends
    assert not any(gate._logit_sinks for gate in token_gates(module.model))


def test_response_loss_counts_only_response_targets():
    logits = torch.randn(1, 4, 7)
    input_ids = torch.tensor([[1, 2, 3, 4]])
    attention = torch.tensor([[1, 1, 1, 0]])
    response = torch.tensor([[0, 0, 1, 0]])
    expected = torch.nn.functional.cross_entropy(logits[0, 1:2], input_ids[0, 2:3])
    torch.testing.assert_close(causal_lm_loss(logits, input_ids, attention, response, "response"), expected)
    every = torch.nn.functional.cross_entropy(logits[0, :2], input_ids[0, 1:3])
    torch.testing.assert_close(causal_lm_loss(logits, input_ids, attention, response, "all"), every)


def test_gate_biases_and_magnitudes_are_never_weight_decayed(tiny_model_dir):
    module = make_module(tiny_model_dir, method="dora_gate")
    decayed, undecayed = adapter_parameter_groups(module.model.named_parameters(), weight_decay=0.1)
    assert decayed["weight_decay"] == 0.1 and undecayed["weight_decay"] == 0.0
    assert all(parameter.ndim == 1 for parameter in undecayed["params"])
    assert len(undecayed["params"]) == 2 * 10  # a gate bias and a magnitude per module
    assert all(parameter.ndim == 2 for parameter in decayed["params"])


class LossRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


class StopAfterFirstEpoch(Callback):
    """Simulates an interrupted run: stops once the first epoch (and its checkpoint) is done."""

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        trainer.should_stop = True


def fit(
    model_dir, instruction_file, root, epochs, method="hira_gate", ckpt_path=None, interrupt=False, **options
):
    """``method`` for ``epochs`` epochs (stopped after the first if ``interrupt``); its losses and Trainer."""
    recorder = LossRecorder()
    stop = [StopAfterFirstEpoch()] if interrupt else []
    trainer = fit_resumable(
        model_dir, instruction_file, root, method, options, [recorder, *stop], ckpt_path, max_epochs=epochs
    )
    return recorder.losses, trainer


@pytest.mark.parametrize("method", ["hira_gate", "dora"])
def test_resume_continues_exactly(tiny_model_dir, instruction_file, tmp_path, method):
    options = {"dropout": 0.1} if method == "dora" else {"entropy_weight": 0.05}
    full, _ = fit(tiny_model_dir, instruction_file, tmp_path / "full", 2, method, **options)
    first, _ = fit(tiny_model_dir, instruction_file, tmp_path / "part", 2, method, interrupt=True, **options)
    second, _ = fit(
        tiny_model_dir,
        instruction_file,
        tmp_path / "part",
        2,
        method,
        ckpt_path=tmp_path / "part" / "last.ckpt",
        **options,
    )
    assert len(full) == 2 * len(first) == 10
    assert first + second == pytest.approx(full, rel=1e-6, abs=1e-7)


def test_checkpoint_holds_only_the_adapter(tiny_model_dir, instruction_file, tmp_path):
    _, trainer = fit(tiny_model_dir, instruction_file, tmp_path, 1)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    module = trainer.lightning_module
    adapter_numel = module.adapter_summary.trainable_parameters
    assert sum(value.numel() for value in checkpoint["state_dict"].values()) == adapter_numel
    assert all(".base_layer." not in key and "embed_tokens" not in key for key in checkpoint["state_dict"])
    assert checkpoint["gatera"]["method_name"] == "hira_gate"


def test_checkpoint_of_another_method_is_refused(tiny_model_dir, instruction_file, tmp_path):
    fit(tiny_model_dir, instruction_file, tmp_path, 1, method="lora")
    with pytest.raises(CheckpointMismatchError, match="trained with method 'lora'.*uses 'hira_gate'"):
        fit(tiny_model_dir, instruction_file, tmp_path / "again", 2, ckpt_path=tmp_path / "last.ckpt")


def test_checkpoint_of_another_base_model_is_refused(tiny_model_dir, instruction_file, tmp_path):
    from tests.helpers.tiny_checkpoint import write_tiny_model_dir

    fit(tiny_model_dir, instruction_file, tmp_path, 1)
    other = write_tiny_model_dir(tmp_path / "other_model")
    config_path = other / "config.json"
    config_path.write_text(
        config_path.read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 1')
    )
    with pytest.raises(CheckpointMismatchError, match="base model"):
        fit(other, instruction_file, tmp_path / "again", 2, ckpt_path=tmp_path / "last.ckpt")
