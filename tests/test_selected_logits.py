"""Logits at the target positions only: the same loss and adapter gradients as the full (B, T, V) path.

`GateraModule.compute_losses` asks the model for the logits at the loss positions only
(`gatera_lab.models.selected_logits.logits_at`) and runs the float32 log-softmax in chunks; the reference
computes every position's logits and `causal_lm_loss` on them. For every registered method, in float32 the
loss and every adapter gradient agree to 1e-6 relative; in bfloat16 autocast they agree within bfloat16
rounding.
"""

from __future__ import annotations

import pytest
import torch

from gatera_lab import adapter_layers
from gatera_lab.models.selected_logits import logits_at, target_log_probs
from gatera_lab.registry import available_methods
from gatera_lab.training.causal_lm_loss import causal_lm_loss, loss_targets, target_loss
from gatera_lab.training.module import GateraModule
from tests.conftest import make_tiny_llama, randomize_adapters

METHODS = available_methods()


def training_batch(seed: int = 3, rows: int = 4, length: int = 24) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 128, (rows, length), generator=generator)  # (B, T)
    attention = torch.ones(rows, length, dtype=torch.long)
    response = torch.zeros(rows, length, dtype=torch.long)
    for row in range(rows):
        padding = int(torch.randint(0, length // 3, (1,), generator=generator))
        attention[row, length - padding :] = 0  # right padding
        response[row, length - padding - 1 - row : length - padding] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "response_mask": response}


def module_with(method: str, loss_on: str = "response") -> GateraModule:
    module = GateraModule(method=method, model="unused", loss_on=loss_on, warmup_steps=0)
    module.attach_model(make_tiny_llama(seed=0).train())
    randomize_adapters(module.model, seed=1)
    for _, layer in adapter_layers(module.model):  # gates away from 0.5 so that they matter
        if getattr(layer, "token_gate", None) is not None:
            torch.nn.init.normal_(layer.token_gate.weight, std=0.3)
    return module


def adapter_gradients(module: GateraModule, loss: torch.Tensor) -> list[torch.Tensor]:
    parameters = [p for p in module.model.parameters() if p.requires_grad]
    return list(torch.autograd.grad(loss, parameters))


def full_logits_loss(module: GateraModule, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    logits = module.model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).logits  # (B, T, V)
    return causal_lm_loss(
        logits, batch["input_ids"], batch["attention_mask"], batch["response_mask"], module.hparams.loss_on
    )


@pytest.mark.parametrize("loss_on", ["response", "all"])
@pytest.mark.parametrize("method", METHODS)
def test_float32_loss_and_gradients_equal_the_full_logits_path(method: str, loss_on: str) -> None:
    module, batch = module_with(method, loss_on), training_batch()
    torch.manual_seed(0)
    selected = module.compute_losses(batch)["task"]
    selected_gradients = adapter_gradients(module, selected)
    torch.manual_seed(0)  # the same dropout masks
    reference = full_logits_loss(module, batch)
    reference_gradients = adapter_gradients(module, reference)
    torch.testing.assert_close(selected, reference, rtol=1e-6, atol=0)
    for got, expected in zip(selected_gradients, reference_gradients, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("method", ["lora", "hira_gate"])
def test_bfloat16_autocast_loss_equals_the_full_logits_path_within_its_rounding(method: str) -> None:
    module, batch = module_with(method), training_batch()
    module.model.to(torch.bfloat16)
    for _, layer in adapter_layers(module.model):  # float32 adapters, as the CLI trains them
        for _, parameter in layer.named_adapter_parameters():
            parameter.data = parameter.data.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(0)
        selected = module.compute_losses(batch)["task"]
        torch.manual_seed(0)
        reference = full_logits_loss(module, batch)
    torch.testing.assert_close(selected, reference, rtol=1e-2, atol=0)  # bfloat16 keeps 8 bits of mantissa


def test_the_output_layer_sees_only_the_selected_positions() -> None:
    model, batch = make_tiny_llama(), training_batch()
    targets = loss_targets(batch["input_ids"], batch["attention_mask"], batch["response_mask"], "response")
    seen = []
    handle = model.lm_head.register_forward_hook(lambda module, args, output: seen.append(args[0].shape))
    with logits_at(model, targets.rows, targets.positions):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    handle.remove()
    assert seen == [torch.Size([1, len(targets.rows), 32])] and logits.shape == (1, len(targets.rows), 128)
    model(input_ids=batch["input_ids"])  # the hook is gone after the block
    assert model.lm_head._forward_pre_hooks == {}


def test_chunked_log_probs_and_gradients_equal_one_chunk_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(37, 211, generator=generator).requires_grad_(True)  # (S, V)
    targets = torch.randint(0, 211, (37,), generator=generator)
    whole = target_log_probs(logits, targets, chunk_size=1000)
    (whole_gradient,) = torch.autograd.grad(whole.sum(), logits)
    chunked = target_log_probs(logits, targets, chunk_size=5)
    (chunked_gradient,) = torch.autograd.grad(chunked.sum(), logits)
    assert torch.equal(whole, chunked) and torch.equal(whole_gradient, chunked_gradient)


def test_target_loss_from_selected_logits_is_bitwise_the_full_logits_loss() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 11, 29, generator=generator)  # (B, T, V)
    batch = training_batch(rows=3, length=11)
    targets = loss_targets(batch["input_ids"] % 29, batch["attention_mask"], batch["response_mask"], "all")
    selected = target_loss(logits[targets.rows, targets.positions][None], targets, chunk_size=4)
    full = causal_lm_loss(
        logits, batch["input_ids"] % 29, batch["attention_mask"], batch["response_mask"], "all"
    )
    assert torch.equal(selected, full)
