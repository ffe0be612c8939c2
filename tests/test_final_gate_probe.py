"""`FinalGateProbe`: per-row gate statistics by hand, and `measure` on the tiny model with known gates."""

from __future__ import annotations

import math

import pytest
import torch

from gatera_lab import build_method
from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.diagnostics import FinalGateProbe
from gatera_lab.diagnostics.final_gate_probe import row_statistics
from gatera_lab.errors import ConfigError
from gatera_lab.training.module import GateraModule
from tests.helpers.tiny_fit import tiny_data

# one gate value per module, in adapter order: L0 q k v up down, L1 q k v up down
GATES = [0.05, 0.95, 0.5, 0.3, 0.99, 0.02, 0.6, 0.92, 0.4, 0.08]


def test_row_statistics_by_hand():
    real = torch.tensor([[True, True, True, False], [True, True, True, True]])  # (B=2, T=4)
    response = torch.tensor([[False, False, True, False], [False, True, True, True]])
    first = torch.tensor([[0.05, 0.5, 0.95, 0.0], [0.2, 0.3, 0.4, 0.99]])  # module 1 (B, T)
    second = torch.tensor([[0.5, 0.5, 0.5, 1.0], [0.01, 0.5, 0.5, 0.5]])  # module 2
    rows = row_statistics({"a": first, "b": second}, real, response)
    # row 0: real gates 0.05 0.5 0.95 | 0.5 0.5 0.5 -> 2 of 6 near-binary (the padding's 0.0 and 1.0 left out)
    assert rows["near_binary"].tolist() == pytest.approx([2 / 6, 2 / 8])
    assert rows["prompt_mean"].tolist() == pytest.approx([(0.05 + 0.5 + 0.5 + 0.5) / 4, (0.2 + 0.01) / 2])
    assert rows["response_mean"].tolist() == pytest.approx([(0.95 + 0.5) / 2, (0.3 + 0.4 + 0.99 + 1.5) / 6])

    no_response = row_statistics({"a": first}, real, torch.zeros_like(real))
    assert all(math.isnan(value) for value in no_response["response_mean"].tolist())


def test_measure_on_known_gates(tiny_model_dir, instruction_file):
    torch.manual_seed(0)
    module = GateraModule(method=build_method("hira_gate", r=4), model=str(tiny_model_dir))
    module.configure_model()
    with torch.no_grad():  # g = sigmoid(b) on every token, one known value per module
        for (_, layer), value in zip(gated_layers(module.model), GATES, strict=True):
            layer.token_gate.weight.zero_()
            layer.token_gate.bias.fill_(math.log(value / (1 - value)))
    data = tiny_data(tiny_model_dir, instruction_file, val_size=6, max_length=512)
    data.setup("fit")
    probe = FinalGateProbe(max_batches=2, prompt_rows=3, prompt_new_tokens=2, max_new_tokens=3, bins=4)
    module.model.train()
    result = probe.measure(module.model, data, torch.device("cpu"))

    near = sum(value < 0.1 or value > 0.9 for value in GATES) / len(GATES)
    mean = sum(GATES) / len(GATES)
    assert result["rows"] == 6 and result["modules"] == 10
    assert result["per_row"]["near_binary"] == pytest.approx([near] * 6, abs=1e-5)
    assert result["per_row"]["prompt_mean"] == pytest.approx([mean] * 6, abs=1e-5)
    assert result["per_row"]["response_mean"] == pytest.approx([mean] * 6, abs=1e-5)
    assert result["groups"]["all"]["near_binary"] == pytest.approx(near)
    static = result["token_variance"]  # one gate per module on every token: all of the variance is between
    assert static["within"] == pytest.approx(0.0, abs=1e-10) and static["flips"] == 0.0
    assert static["between"] == pytest.approx(
        float(torch.tensor(GATES).double().var(unbiased=False)), rel=1e-5
    )
    assert static["token_share"] == pytest.approx(0.0, abs=1e-8)
    prompts = result["prompts"]
    assert prompts["new_tokens"] == 2 and len(prompts["prefill_mean"]) == 3
    assert prompts["prefill_mean"] == pytest.approx([mean] * 3, abs=1e-5)
    assert prompts["decode_mean"] == pytest.approx([mean] * 3, abs=1e-5)
    assert result["probe"]["prefill_mean"] == pytest.approx(mean, abs=1e-6)
    assert module.model.training  # train mode restored


def test_options_are_checked():
    with pytest.raises(ConfigError, match="FinalGateProbe.prompt_rows"):
        FinalGateProbe(prompt_rows=0)
