"""The GateRA gate: forced values, entropy, and the soft gradient-masking effect."""

from __future__ import annotations

import pytest
import torch

from gatera_lab import adapter_layers, available_methods, build_method, masked_gate_entropy
from gatera_lab.adapters.token_gate import (
    binary_entropy_from_logits,
    capture_gate_logits,
    forced_gate_value,
    token_gates,
)
from tests.conftest import make_tiny_llama, randomize_adapters

GATED = [name for name in available_methods() if build_method(name).gate]


def gated_and_ungated(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    gated = make_tiny_llama()
    build_method(name, r=4, alpha=8).apply(gated)
    randomize_adapters(gated, seed=5, std=0.2)
    ungated = make_tiny_llama()
    method = build_method(name, r=4, alpha=8)
    method.gate = False
    method.apply(ungated)
    state = {key: value for key, value in gated.state_dict().items() if "token_gate" not in key}
    ungated.load_state_dict(state)
    return gated, ungated


@pytest.mark.parametrize("name", GATED)
def test_gate_forced_to_zero_gives_the_base_model_exactly(name, token_batch):
    gated, _ = gated_and_ungated(name)
    base = make_tiny_llama()
    with forced_gate_value(gated, 0.0):
        assert torch.equal(gated(**token_batch).logits, base(**token_batch).logits)
    assert not torch.equal(gated(**token_batch).logits, base(**token_batch).logits)  # the scope ended


@pytest.mark.parametrize("name", GATED)
def test_gate_forced_to_one_gives_the_ungated_method(name, token_batch):
    gated, ungated = gated_and_ungated(name)
    expected = ungated(**token_batch).logits
    assert not torch.allclose(expected, make_tiny_llama()(**token_batch).logits, atol=1e-3)  # adapters matter
    with forced_gate_value(gated, 1.0), capture_gate_logits(gated) as captured:
        torch.testing.assert_close(gated(**token_batch).logits, expected, rtol=1e-6, atol=1e-6)
    assert captured.latest() == []  # forced gates compute no logits


def test_gate_starts_at_sigmoid_of_its_bias(token_batch):
    model = make_tiny_llama()
    build_method("lora_gate", r=4, gate_bias=-2.0, gate_weight_init_std=0.0).apply(model)
    with capture_gate_logits(model) as captured:
        model(**token_batch)
    assert len(captured.latest()) == len(list(adapter_layers(model)))
    for logits in captured.latest():
        gates = torch.sigmoid(logits)
        torch.testing.assert_close(gates, torch.full_like(gates, torch.sigmoid(torch.tensor(-2.0)).item()))


def test_captured_logits_are_the_scopes_forwards_only(token_batch):
    model = make_tiny_llama()
    build_method("lora_gate", r=4, gate_weight_init_std=0.5).apply(model)
    model(**token_batch)  # before the scope: not captured
    with capture_gate_logits(model) as captured:
        model(**token_batch)
        model(**token_batch)
    model(**token_batch)  # after the scope: not captured, and nothing is kept on the gates
    gates = token_gates(model)
    assert len(captured.by_gate) == len(gates) == 10
    assert all(len(per_forward) == 2 for per_forward in captured.by_gate)
    for gate, per_forward in zip(gates, captured.by_gate, strict=True):
        assert per_forward[-1].shape == token_batch["input_ids"].shape  # (B, T)
        assert per_forward[-1].requires_grad  # attached: the entropy term backpropagates through it
        assert not gate._logit_sinks and gate._forced_value is None


def test_entropy_is_averaged_over_real_tokens_only():
    logits = [torch.tensor([[0.0, 2.0, 50.0]]), torch.tensor([[-1.0, 0.0, -50.0]])]  # (B=1, T=3) per module
    mask = torch.tensor([[1, 1, 0]])

    def entropy(z: float) -> float:
        g = torch.sigmoid(torch.tensor(z, dtype=torch.float64))
        return float(-(g * g.log() + (1 - g) * (1 - g).log()))

    expected = (entropy(0.0) + entropy(2.0) + entropy(-1.0) + entropy(0.0)) / 4
    assert masked_gate_entropy(logits, mask).item() == pytest.approx(expected, rel=1e-6)
    assert binary_entropy_from_logits(torch.tensor([80.0, -80.0])).tolist() == pytest.approx(
        [0.0, 0.0], abs=1e-30
    )


@pytest.mark.parametrize("name", GATED)
def test_each_tokens_adapter_gradient_is_scaled_by_its_gate(name):
    """dL/dtheta = sum_t g_t J_t^T delta_t: the gated gradient equals the gate-weighted per-token gradients."""
    torch.manual_seed(0)
    base = torch.nn.Linear(16, 12)
    wrapper = torch.nn.Sequential()
    wrapper.add_module("q_proj", base)
    method = build_method(
        name, r=3, alpha=6, target_modules=["q_proj"], gate_weight_init_std=0.5, gate_bias=0.3
    )
    method.apply(wrapper)
    layer = wrapper.q_proj
    randomize_adapters(wrapper, seed=2, std=0.3)
    x = torch.randn(1, 5, 16)  # (B, T, d_in)
    upstream = torch.randn(1, 5, 12)  # dL/dy per token
    gates = torch.sigmoid(layer.token_gate.logits(x)).detach()  # (1, 5, 1)
    assert gates.std() > 0.05  # tokens really have different gates
    parameters = [p for n, p in layer.named_adapter_parameters() if not n.startswith("token_gate")]

    (layer(x) * upstream).sum().backward()
    gated_grads = [p.grad.clone() for p in parameters]

    expected = [torch.zeros_like(p) for p in parameters]
    contribution_norms = []
    with forced_gate_value(wrapper, 1.0):
        for token in range(5):
            for p in parameters:
                p.grad = None
            (layer(x)[:, token] * upstream[:, token]).sum().backward()
            contribution_norms.append(sum(p.grad.norm() ** 2 for p in parameters).sqrt() * gates[0, token, 0])
            for total, p in zip(expected, parameters, strict=True):
                total += gates[0, token, 0] * p.grad
    for got, want in zip(gated_grads, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert all(norm > 0 for norm in contribution_norms)
