"""A user's own AdapterMethod subclass works through the API and from YAML by class_path, gated or not."""

from __future__ import annotations

import pytest
import torch

from gatera_lab import adapter_layers
from gatera_lab.cli import main
from tests.conftest import make_tiny_llama
from tests.helpers.tiny_cli_args import method_yaml_args
from tests.helpers.user_method import OutputShift


def test_user_method_is_zero_at_init_and_gated_by_setting(token_batch):
    base_logits = make_tiny_llama()(**token_batch).logits
    model = make_tiny_llama()
    summary = OutputShift(r=1, alpha=1, gate=True, target_modules=["down_proj"]).apply(model)
    assert summary.method == "OutputShift+gate"
    torch.testing.assert_close(model(**token_batch).logits, base_logits, rtol=0, atol=0)
    for _, layer in adapter_layers(model):
        assert layer.token_gate is not None
        layer.shift.data.fill_(0.5)
    assert not torch.allclose(model(**token_batch).logits, base_logits)
    assert OutputShift(shift_init=0.25).hparams()["shift_init"] == 0.25


@pytest.mark.parametrize("gate", ["false", "true"])
def test_user_method_from_yaml_class_path(gate, tiny_model_dir, instruction_file, tmp_path):
    init_args = {"shift_init": 0.0, "gate": gate == "true", "target_modules": ["down_proj"]}
    class_path = "tests.helpers.user_method.OutputShift"
    args = method_yaml_args(tiny_model_dir, instruction_file, tmp_path, class_path, init_args)
    assert main([*args, "--trainer.fast_dev_run", "1"]) == 0
