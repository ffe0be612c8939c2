"""Gate statistics: every number against a value computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from gatera_lab import build_method
from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.adapters.token_gate import forced_gate_value, masked_gate_entropy
from gatera_lab.diagnostics.gate_capture import GateCapture
from gatera_lab.diagnostics.gate_statistics import (
    binary_entropy,
    dead_adapters,
    describe_module,
    group_names,
    grouped_summaries,
    mean_gate_entropy,
    prompt_response_means,
    short_name,
    summarize,
)
from tests.conftest import make_tiny_llama

Q0, K0, Q1 = (
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.1.self_attn.q_proj",
)


def test_summary_of_known_values():
    values = torch.tensor([0.05, 0.5, 0.95, 0.2])
    summary = summarize(values)
    mean = (0.05 + 0.5 + 0.95 + 0.2) / 4
    std = math.sqrt(sum((v - mean) ** 2 for v in [0.05, 0.5, 0.95, 0.2]) / 4)
    assert summary.count == 4
    assert summary.mean == pytest.approx(mean)
    assert summary.std == pytest.approx(std)
    assert summary.frac_low == 0.25 and summary.frac_high == 0.25 and summary.near_binary == 0.5
    assert summarize(torch.tensor([])).count == 0 and summarize(torch.tensor([])).as_scalars("x") == {}


def test_module_names_are_read_as_layer_and_kind():
    assert describe_module("model.layers.12.mlp.down_proj").layer == 12
    assert describe_module("model.layers.12.mlp.down_proj").kind == "down"
    assert short_name(Q1) == "L01.q"
    assert short_name("lm_head") == "lm_head"
    groups = group_names([Q0, K0, Q1])
    assert groups == {
        "all": [Q0, K0, Q1],
        "type_q": [Q0, Q1],
        "type_k": [K0],
        "layer_0": [Q0, K0],
        "layer_1": [Q1],
    }


def test_grouped_statistics_exclude_padding_tokens():
    # batch of 2 x 3 tokens; the last token of row 1 is padding and carries a gate that would change every number
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    gates = {
        Q0: torch.tensor([[0.0, 0.05, 0.5], [0.95, 1.0, 0.7]]),
        K0: torch.tensor([[0.2, 0.2, 0.2], [0.2, 0.2, 0.99]]),
        Q1: torch.tensor([[0.92, 0.5, 0.01], [0.3, 0.4, 0.0]]),
    }
    real = {
        name: [v for v, m in zip(g.flatten().tolist(), mask.flatten().tolist(), strict=True) if m]
        for name, g in gates.items()
    }
    summaries = grouped_summaries(gates, mask)
    for group, members in {
        "all": [Q0, K0, Q1],
        "type_q": [Q0, Q1],
        "layer_0": [Q0, K0],
        "type_k": [K0],
    }.items():
        pooled = [v for name in members for v in real[name]]
        mean = sum(pooled) / len(pooled)
        assert summaries[group].count == len(pooled) == 5 * len(members)
        assert summaries[group].mean == pytest.approx(mean)
        assert summaries[group].std == pytest.approx(
            math.sqrt(sum((v - mean) ** 2 for v in pooled) / len(pooled))
        )
        assert summaries[group].frac_low == pytest.approx(sum(v < 0.1 for v in pooled) / len(pooled))
        assert summaries[group].frac_high == pytest.approx(sum(v > 0.9 for v in pooled) / len(pooled))
    assert summaries["all"].frac_low == pytest.approx(
        3 / 15
    )  # 0.0, 0.05 (Q0) and 0.01 (Q1); Q1's 0.0 is padding
    assert summaries["layer_1"].mean == pytest.approx((0.92 + 0.5 + 0.01 + 0.3 + 0.4) / 5)


def test_prompt_and_response_means():
    gates = {
        Q0: torch.tensor([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]]),
        K0: torch.tensor([[0.1, 0.1, 0.1, 0.3, 0.3, 0.9]]),
    }
    attention = torch.tensor([[1, 1, 1, 1, 1, 0]])
    response = torch.tensor([[0, 0, 0, 1, 1, 0]])
    means = prompt_response_means(gates, attention, response)
    assert means["all"][0] == pytest.approx((0.0 + 0.2 + 0.4 + 0.1 * 3) / 6)
    assert means["all"][1] == pytest.approx((0.6 + 0.8 + 0.3 + 0.3) / 4)
    assert means["type_q"] == pytest.approx((0.2, 0.7))
    no_response = prompt_response_means(gates, attention, torch.zeros_like(response))
    assert math.isnan(no_response["all"][1])


def test_dead_adapters_are_the_modules_off_on_almost_every_real_token():
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    gates = {
        Q0: torch.tensor([[0.01, 0.02, 0.0, 0.09, 0.9]]),  # off on every real token: dead
        K0: torch.tensor([[0.01, 0.02, 0.0, 0.5, 0.0]]),  # on for one real token of four
    }
    assert dead_adapters(gates, mask) == [Q0]
    assert dead_adapters(gates, mask, dead_fraction=0.75) == [Q0, K0]


def test_entropy_from_logits_equals_the_training_regulariser_and_from_gates_agrees():
    logits = {Q0: torch.tensor([[-3.0, 0.0, 2.0]]), K0: torch.tensor([[1.0, -1.0, 8.0]])}
    gates = {name: torch.sigmoid(z) for name, z in logits.items()}
    mask = torch.tensor([[1, 1, 0]])
    expected = masked_gate_entropy(list(logits.values()), mask)
    by_hand = (
        sum(
            -(g * math.log(g) + (1 - g) * math.log(1 - g))
            for z in (-3.0, 0.0, 1.0, -1.0)
            for g in [1 / (1 + math.exp(-z))]
        )
        / 4
    )
    assert mean_gate_entropy(gates, logits, mask) == pytest.approx(float(expected))
    assert mean_gate_entropy(gates, logits, mask) == pytest.approx(by_hand)
    assert mean_gate_entropy(gates, {Q0: None, K0: None}, mask) == pytest.approx(by_hand, rel=1e-6)
    assert float(binary_entropy(torch.tensor([0.0, 1.0])).sum()) == 0.0


def test_capture_reads_gates_set_to_known_values_and_forced_gates(token_batch):
    model = make_tiny_llama()
    build_method("hira_gate", r=4, gate_weight_init_std=0.0).apply(model)  # gates set by the bias alone
    layers = gated_layers(model)
    values = torch.linspace(0.03, 0.97, len(layers))
    with torch.no_grad():
        for (_, layer), value in zip(layers, values, strict=True):
            layer.token_gate.bias.fill_(math.log(value / (1 - value)))
    capture = GateCapture(model)
    capture.start()
    with torch.no_grad():
        model(**token_batch)
        model(**token_batch)  # a second forward (as a checkpoint recomputation would) is ignored
    capture.stop()
    assert not any(layer.token_gate._forward_hooks for _, layer in layers)
    gates = capture.first_gates()
    assert list(gates) == [name for name, _ in layers] and all(len(v) == 1 for v in capture.gates.values())
    for (name, _), value in zip(layers, values, strict=True):
        assert gates[name].shape == (2, 10)
        torch.testing.assert_close(gates[name], torch.full((2, 10), float(value)))
    summary = grouped_summaries(gates, token_batch["attention_mask"])["all"]
    assert summary.mean == pytest.approx(float(values.mean()), rel=1e-5)
    assert summary.frac_low == pytest.approx(float((values < 0.1).double().mean()))

    capture.start()
    with torch.no_grad(), forced_gate_value(layers[0][1], 0.25):
        model(**token_batch)
    capture.stop()
    assert not any(layer.token_gate._logit_sinks for _, layer in layers)
    name = layers[0][0]
    torch.testing.assert_close(capture.first_gates()[name], torch.full((2, 10), 0.25))
    assert capture.first_logits()[name] is None
    forced = {name: capture.first_gates()[name]}
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert mean_gate_entropy(forced, {name: None}, token_batch["attention_mask"]) == pytest.approx(h)
