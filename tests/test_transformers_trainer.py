"""`GateraTrainer`: one Hugging Face Trainer step equals `GateraModule`'s, gate logs, adapter saving, bad use."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback, TrainingArguments

from gatera_lab import ConfigError, adapter_layers, adapter_state_dict, build_method
from gatera_lab.adapters.token_gate import forced_gate_value
from gatera_lab.export import load_adapter
from gatera_lab.integrations import GateraTrainer, NoGateLogitsError
from gatera_lab.training.module import GateraModule
from tests.conftest import make_tiny_llama, randomize_adapters

METHOD = dict(r=4, alpha=8, dropout=0.0, entropy_weight=0.3, gate_weight_init_std=0.1)


def make_batch() -> dict[str, torch.Tensor]:
    """Two rows of 12 tokens, the second with 3 padding tokens; the last 5 real tokens are the response."""
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(3, 128, (2, 12), generator=generator)  # (B, T)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    response_mask = torch.zeros_like(input_ids)
    response_mask[0, 7:] = 1
    response_mask[1, 4:9] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}


def trainer_rows(batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """The batch as Trainer rows: the response tokens are the labels, everything else -100."""
    labels = torch.where(batch["response_mask"] != 0, batch["input_ids"], -100)  # (B, T)
    return [
        {
            "input_ids": batch["input_ids"][i],
            "attention_mask": batch["attention_mask"][i],
            "labels": labels[i],
        }
        for i in range(batch["input_ids"].shape[0])
    ]


def training_args(output_dir, **kwargs) -> TrainingArguments:
    settings = dict(
        per_device_train_batch_size=2,
        max_steps=1,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        max_grad_norm=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return TrainingArguments(output_dir=str(output_dir), **{**settings, **kwargs})


class GradientRecorder(TrainerCallback):
    """Keeps the adapter gradients the optimizer is about to apply."""

    def __init__(self) -> None:
        self.gradients: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.gradients = adapter_gradients(model)


def adapter_gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        f"{layer_name}.{name}": parameter.grad.clone()
        for layer_name, layer in adapter_layers(model)
        for name, parameter in layer.named_adapter_parameters()
    }


class LossRecorder(GateraTrainer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.losses: list[torch.Tensor] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        self.losses.append(loss.detach())
        return loss


def test_one_trainer_step_has_gatera_modules_loss_and_gradients(tiny_model_dir, tmp_path):
    module = GateraModule(method=build_method("hira_gate", **METHOD), model=str(tiny_model_dir))
    module.configure_model()
    randomize_adapters(module.model, seed=1)
    module.train()
    batch = make_batch()
    losses = module.compute_losses(batch)
    module.training_objective(batch, losses).backward()
    expected = adapter_gradients(module.model)
    module.model.zero_grad(set_to_none=True)

    recorder = GradientRecorder()
    trainer = LossRecorder(
        model=module.model,
        args=training_args(tmp_path),
        train_dataset=trainer_rows(batch),
        callbacks=[recorder],
    )
    trainer.train()

    assert len(trainer.losses) == 1
    torch.testing.assert_close(trainer.losses[0], losses["loss"].detach(), rtol=1e-5, atol=1e-6)
    assert set(recorder.gradients) == set(expected)
    for name, gradient in expected.items():
        torch.testing.assert_close(recorder.gradients[name], gradient, rtol=1e-4, atol=1e-7, msg=name)
    logged = trainer.state.log_history[0]
    assert logged["gate_entropy"] == pytest.approx(float(losses["entropy"].detach()), rel=1e-5)
    assert logged["entropy_term"] == pytest.approx(0.3 * float(losses["entropy"].detach()), rel=1e-5)
    assert logged["task_loss"] == pytest.approx(logged["loss"] - logged["entropy_term"])
    for key in ("gates/all/mean", "gates/all/near_binary", "gates/type_q/std", "gates/dead_adapters"):
        assert key in logged
    assert not any(key.startswith("gates/layer_") for key in logged)


def test_save_model_writes_the_adapter_beside_checkpoints_and_resuming_reads_it(tiny_model_dir, tmp_path):
    def trainer_for(seed: int, max_steps: int) -> GateraTrainer:
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        build_method("hira_gate", **METHOD).apply(model)
        randomize_adapters(model, seed=seed)
        args = training_args(tmp_path / "run", max_steps=max_steps, save_strategy="steps", save_steps=1)
        return GateraTrainer(model=model, args=args, train_dataset=trainer_rows(make_batch()))

    trainer = trainer_for(seed=1, max_steps=2)
    trainer.train()
    trainer.save_model()
    out = tmp_path / "run"
    assert (out / "gatera_adapter.json").is_file() and (
        out / "checkpoint-1" / "gatera_adapter.json"
    ).is_file()
    assert not any(path.name.startswith("model") for path in out.rglob("*.safetensors"))

    reloaded = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    load_adapter(reloaded, out)
    trainer.model.eval()
    input_ids = make_batch()["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids).logits, trainer.model(input_ids).logits)

    trained = {key: value.clone() for key, value in adapter_state_dict(trainer.model).items()}
    resumed = trainer_for(seed=7, max_steps=2)
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-1"))
    for key, value in adapter_state_dict(resumed.model).items():
        torch.testing.assert_close(value, trained[key], msg=key)


def test_a_model_without_adapters_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no gatera-lab adapters"):
        GateraTrainer(model=make_tiny_llama(), args=training_args(tmp_path))


def test_a_gated_model_whose_gates_hand_over_nothing_is_refused(tmp_path):
    model = make_tiny_llama()
    build_method("lora_gate", **METHOD).apply(model)
    trainer = GateraTrainer(
        model=model, args=training_args(tmp_path), train_dataset=trainer_rows(make_batch())
    )
    with forced_gate_value(model, 1.0), pytest.raises(NoGateLogitsError, match="captured no gate logits"):
        trainer.train()


def test_bad_options_and_a_nameless_base_are_clear_errors(tmp_path):
    model = make_tiny_llama()
    build_method("lora", r=4).apply(model)
    with pytest.raises(ConfigError, match="gate_statistics"):
        GateraTrainer(model=model, args=training_args(tmp_path), gate_statistics="some")
    trainer = GateraTrainer(model=model, args=training_args(tmp_path))
    with pytest.raises(ConfigError, match="base_model_name_or_path="):
        trainer.save_model(str(tmp_path / "adapter"))


def test_the_trainers_optimizer_decays_the_matrices_only_as_gatera_module(tmp_path):
    model = make_tiny_llama()
    build_method("dora_gate", r=4).apply(model)
    trainer = GateraTrainer(model=model, args=training_args(tmp_path, weight_decay=0.1))
    optimizer = trainer.create_optimizer()
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    expected = {
        id(parameter): 0.1 if parameter.ndim >= 2 else 0.0
        for _, layer in adapter_layers(model)
        for _, parameter in layer.named_adapter_parameters()
    }
    assert decay == expected
    names = {id(p): name for name, p in model.named_parameters()}
    spared = {names[key].rsplit(".", 1)[-1] for key, value in decay.items() if value == 0.0}
    assert spared == {"lora_magnitude", "bias"}  # DoRA's m and the gate bias
