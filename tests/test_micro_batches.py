"""Token-bounded micro-batches: the same loss and adapter gradients as the whole batch in one forward."""

from __future__ import annotations

import pytest
import torch

from gatera_lab.errors import ConfigError
from gatera_lab.training.micro_batches import split_rows
from gatera_lab.training.module import GateraModule
from tests.test_selected_logits import adapter_gradients, module_with, training_batch


def test_groups_hold_whole_rows_within_the_cap_and_trim_trailing_padding() -> None:
    batch = training_batch(rows=5, length=24)
    lengths = batch["attention_mask"].sum(-1).tolist()
    parts = split_rows(batch, max_tokens=40)
    assert sum(len(part["input_ids"]) for part in parts) == 5
    assert torch.equal(torch.cat([part["input_ids"][:, :1] for part in parts]), batch["input_ids"][:, :1])
    first = 0
    for part in parts:
        rows, columns = part["input_ids"].shape
        assert rows * columns <= 40 or rows == 1
        assert columns == max(lengths[first : first + rows])  # trimmed to the group's longest row
        assert torch.equal(part["response_mask"], batch["response_mask"][first : first + rows, :columns])
        first += rows


def test_a_row_longer_than_the_cap_is_a_group_of_its_own() -> None:
    parts = split_rows(training_batch(rows=3, length=24), max_tokens=4)
    assert [len(part["input_ids"]) for part in parts] == [1, 1, 1]


def test_a_bad_cap_is_named() -> None:
    with pytest.raises(ConfigError, match="micro_batch_tokens"):
        split_rows(training_batch(), max_tokens=0)
    with pytest.raises(ConfigError, match="micro_batch_tokens"):
        GateraModule(method="lora", micro_batch_tokens=0)


@pytest.mark.parametrize("loss_on", ["response", "all"])
@pytest.mark.parametrize("method", ["lora", "dora_gate", "hira_gate"])
def test_micro_batches_give_the_whole_batch_loss_and_gradients(method: str, loss_on: str) -> None:
    whole_module = module_with(method, loss_on)
    whole_module.method.entropy_weight = 0.5
    batch = training_batch(rows=6, length=24)
    torch.manual_seed(0)
    whole = whole_module.compute_losses(batch)
    whole_gradients = adapter_gradients(whole_module, whole["loss"])
    split_module = module_with(method, loss_on)
    split_module.method.entropy_weight = 0.5
    split_module.hparams.micro_batch_tokens = 40  # 6 x 24 slots: at least 4 micro-batches
    torch.manual_seed(0)
    split = split_module.compute_losses(batch)
    split_gradients = adapter_gradients(split_module, split["loss"])
    for key in whole:
        torch.testing.assert_close(split[key], whole[key], rtol=1e-6, atol=1e-7)
    for got, expected in zip(split_gradients, whole_gradients, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
