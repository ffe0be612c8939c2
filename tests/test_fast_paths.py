"""Every optimised forward path equals the plain formula, in values and in gradients.

A method that overrides `forward_ungated` or `forward_gated` (found by inspecting its class, not from a
list) is compared with the generic `AdapterMethod` path on the same layer, the plain formula

    y = W0 x + b + g * DeltaW(dropout(x)),    g the token gate (1 when ungated),

evaluated in fp64 on a copy of the layer with the dropout mask reproduced by re-seeding. That the
methods' `delta` itself is the paper's formula is checked against HF PEFT in tests/test_peft_parity.py.
Also: the custom autograd functions pass gradcheck, and the inference gate-skip path gives exactly the
base output for skipped tokens and the normal output for the others.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gatera_lab import AdapterMethod, ConfigError, adapter_layers, set_adapters_enabled
from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.dora_fused_ops import dora_gated_linear
from gatera_lab.adapters.gate_skip import (
    count_skipped_tokens,
    evaluate_gate_skip,
    gate_skip_threshold,
    set_gate_skip_threshold,
)
from gatera_lab.adapters.hira_fused_ops import hadamard_fused_linear, hadamard_gated_linear
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.method_checks import MethodCase, method_cases

D_IN, D_OUT, R = 12, 10, 4
RTOL, ATOL = 1e-5, 1e-6
SEED = 1234

CASES = method_cases()
GATED = [case for case in CASES if case.gate]


def overrides_fast_path(case: MethodCase) -> bool:
    """Whether the case's class replaces the generic path it runs (`forward_gated` or `forward_ungated`)."""
    name = "forward_gated" if case.gate else "forward_ungated"
    return getattr(case.method_class, name) is not getattr(AdapterMethod, name)


FAST = [case for case in CASES if overrides_fast_path(case)]


def ids(cases: list[MethodCase]) -> list[str]:
    return [case.id for case in cases]


def make_layer(case: MethodCase, dropout: float, bias: bool, seed: int = 0) -> AdapterLinear:
    """An adapter layer of ``case`` on a frozen random ``nn.Linear``, every adapter tensor non-trivial."""
    torch.manual_seed(seed)
    base = nn.Linear(D_IN, D_OUT, bias=bias)
    base.requires_grad_(False)
    method = case.build(r=R, alpha=2.0 * R + 1, dropout=dropout, gate_bias=0.3, gate_weight_init_std=0.5)
    layer = AdapterLinear(base, method)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in layer.named_adapter_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.startswith("token_gate."):
                parameter.copy_(noise)
            else:
                parameter.add_(0.3 * noise)
    return layer


def plain_forward(layer: AdapterLinear, x: torch.Tensor) -> torch.Tensor:
    """The generic `AdapterMethod` path, whatever the layer's method overrides."""
    if layer.token_gate is None:
        return AdapterMethod.forward_ungated(layer.method, layer, x)
    return AdapterMethod.forward_gated(layer.method, layer, x, layer.token_gate(x))


def compare(layer: AdapterLinear, training: bool, x_requires_grad: bool = True) -> None:
    layer.train(training)
    reference = copy.deepcopy(layer).double()  # fp64 leaf copies of every tensor, same requires_grad
    x = torch.randn(2, 5, D_IN, generator=torch.Generator().manual_seed(7))
    x32 = x.clone().requires_grad_(x_requires_grad)
    x64 = x.double().requires_grad_(x_requires_grad)
    upstream = torch.randn(2, 5, D_OUT, generator=torch.Generator().manual_seed(8))

    torch.manual_seed(SEED)
    out = layer(x32)  # the optimised path
    (out * upstream).sum().backward()

    torch.manual_seed(SEED)  # the same dropout mask, drawn the same way
    expected = plain_forward(reference, x64)
    (expected * upstream.double()).sum().backward()

    torch.testing.assert_close(out.double(), expected.detach(), rtol=RTOL, atol=ATOL)
    expected_params = dict(reference.named_parameters())
    for name, parameter in layer.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, name
            expected_grad = expected_params[name].grad
            torch.testing.assert_close(parameter.grad.double(), expected_grad, rtol=RTOL, atol=ATOL, msg=name)
    if x_requires_grad:
        torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=RTOL, atol=ATOL)


def test_the_fast_paths_are_found():
    """Guards the derivation: the built-in methods replace both paths, a plain user method neither."""
    assert FAST and {case.gate for case in FAST} == {False, True}
    assert not [case for case in FAST if case.method_class.__name__ == "OutputShift"]


@pytest.mark.parametrize("case", FAST, ids=ids(FAST))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_fast_path_equals_plain_formula(case, dropout, bias, training):
    compare(make_layer(case, dropout, bias), training)


@pytest.mark.parametrize("case", FAST, ids=ids(FAST))
def test_fast_path_without_input_gradient(case):
    compare(make_layer(case, 0.3, bias=True), training=True, x_requires_grad=False)


@pytest.mark.parametrize("case", FAST, ids=ids(FAST))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fast_path_with_a_trainable_base_layer(case, dropout):
    """Full fine-tuning of W0 and b beside the adapter: their gradients are right too."""
    layer = make_layer(case, dropout, bias=True)
    layer.base_layer.requires_grad_(True)
    compare(layer, training=True)


@pytest.mark.parametrize("case", FAST, ids=ids(FAST))
def test_dropout_is_really_applied_in_training(case):
    """Guards the tests above: with dropout the training output differs from the eval output."""
    layer = make_layer(case, dropout=0.5, bias=False)
    x = torch.randn(3, D_IN)
    assert not torch.allclose(layer.train()(x), layer.eval()(x))


EXACT = [case for case in GATED if case.method_class.exact_base_at_zero_gate]


@pytest.mark.parametrize("case", EXACT, ids=ids(EXACT))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_a_declared_exact_base_at_zero_gate_holds_bit_for_bit(case, training):
    """`exact_base_at_zero_gate`: `forward_gated` gives ``base_layer(x)`` exactly where the gate is 0."""
    layer = make_layer(case, dropout=0.3, bias=True).train(training)
    x = torch.randn(4, 6, D_IN, generator=torch.Generator().manual_seed(11))
    gate = torch.rand(4, 6, 1, generator=torch.Generator().manual_seed(12))
    gate[:, ::2] = 0.0
    with torch.no_grad():
        out = layer.method.forward_gated(layer, x, gate)
        base = layer.base_layer(x)
    assert torch.equal(out[:, ::2], base[:, ::2])
    assert not torch.allclose(out[:, 1::2], base[:, 1::2])


@pytest.mark.parametrize(
    ("use_drop", "use_gate"), [(False, True), (True, False), (True, True)], ids=["gate", "drop", "both"]
)
@pytest.mark.parametrize(("d_in", "d_out"), [(5, 4), (3, 6)], ids=["narrow-out", "wide-out"])
def test_hadamard_gated_function_gradcheck(use_drop, use_gate, d_in, d_out):
    generator = torch.Generator().manual_seed(3)

    def leaf(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(True)

    x, weight, bias = leaf(3, 2, d_in), leaf(d_out, d_in), leaf(d_out)
    lora_a, lora_b = leaf(2, d_in), leaf(d_out, 2)
    x_drop = leaf(3, 2, d_in) if use_drop else None
    gate = torch.sigmoid(leaf(3, 2, 1)).detach().requires_grad_(True) if use_gate else None
    inputs = (x, x_drop, gate, weight, bias, lora_a, lora_b)
    assert torch.autograd.gradcheck(hadamard_gated_linear, inputs)


@pytest.mark.parametrize("use_drop", [False, True], ids=["no-drop", "drop"])
def test_dora_gated_function_gradcheck(use_drop):
    generator = torch.Generator().manual_seed(5)

    def leaf(*shape, grad=True):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(grad)

    x, weight, bias = leaf(3, 2, 5), leaf(4, 5, grad=False), leaf(4, grad=False)
    lora_a, lora_b, magnitude = leaf(2, 5), leaf(4, 2), leaf(4)
    norm = leaf(4, grad=False).abs() + 1.0
    x_drop = leaf(3, 2, 5) if use_drop else None
    gate = torch.sigmoid(leaf(3, 2, 1)).detach().requires_grad_(True)
    inputs = (x, x_drop, gate, weight, bias, lora_a, lora_b, magnitude, norm, 1.5)
    assert torch.autograd.gradcheck(dora_gated_linear, inputs)


def test_hadamard_fused_function_gradcheck():
    generator = torch.Generator().manual_seed(4)

    def leaf(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_(True)

    assert torch.autograd.gradcheck(
        hadamard_fused_linear, (leaf(3, 2, 5), leaf(4, 5), leaf(4), leaf(2, 5), leaf(4, 2))
    )


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bf16_forward_and_backward_run_and_stay_close(case):
    layer = make_layer(case, 0.0, bias=False)
    x = torch.randn(4, D_IN, generator=torch.Generator().manual_seed(9))
    reference = layer(x)
    layer.to(torch.bfloat16)
    out = layer(x.bfloat16().requires_grad_(True))
    out.float().square().sum().backward()
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)
    assert all(
        p.grad is not None and p.grad.dtype == torch.bfloat16 for _, p in layer.named_adapter_parameters()
    )


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_fast_paths_run_under_autocast(case, training):
    """Mixed precision (fp32 parameters, bf16 autocast): the custom functions accept it, as F.linear does."""
    layer = make_layer(case, 0.3, bias=True).train(training)
    x = torch.randn(2, 3, D_IN, generator=torch.Generator().manual_seed(10), requires_grad=True)
    torch.manual_seed(SEED)
    reference = layer(x)
    torch.manual_seed(SEED)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    out.float().square().sum().backward()
    torch.testing.assert_close(out.float(), reference, rtol=0.05, atol=0.05)
    assert x.grad is not None and x.grad.dtype == torch.float32
    for _, parameter in layer.named_adapter_parameters():
        assert parameter.grad is not None and parameter.grad.dtype == torch.float32


# ------------------------------------------------------------------------------------------- gate skipping
def gate_values(layer: AdapterLinear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(layer.token_gate.logits(x)).squeeze(-1)  # (..., T)


@pytest.mark.parametrize("case", GATED, ids=ids(GATED))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(
    ("quantile", "declared_exact", "gathers"),
    [(0.2, True, False), (0.8, True, True), (0.2, False, True)],
    ids=["few-skipped-masked", "many-skipped-gathered", "undeclared-method-gathered"],
)
def test_skip_threshold_gives_base_output_for_skipped_tokens_only(
    case, bias, quantile, declared_exact, gathers
):
    layer = make_layer(case, dropout=0.2, bias=bias).eval()
    layer.method.exact_base_at_zero_gate = declared_exact  # False: what a user's own method looks like
    delta_calls = []
    plain_delta = layer.method.delta
    layer.method.delta = lambda *args: delta_calls.append(args[1].shape[:-1].numel()) or plain_delta(*args)
    x = torch.randn(3, 7, D_IN, generator=torch.Generator().manual_seed(5))
    gates = gate_values(layer, x)
    threshold = float(gates.quantile(quantile))
    skipped = gates < threshold
    assert 0 < skipped.sum() < skipped.numel()
    with torch.no_grad():
        normal = layer(x)
        base = layer.base_layer(x)
        layer.gate_skip_threshold = threshold
        out = layer(x)
    # the path the test means to exercise: gathering calls delta on the kept tokens only
    assert any(tokens < skipped.numel() for tokens in delta_calls) == gathers
    assert torch.equal(out[skipped], base[skipped])
    torch.testing.assert_close(out[~skipped], normal[~skipped], rtol=RTOL, atol=ATOL)
    assert not torch.allclose(normal[skipped], base[skipped])  # skipping did change those tokens


@pytest.mark.parametrize("case", GATED, ids=ids(GATED))
def test_skip_threshold_is_ignored_in_training_and_with_autograd(case):
    layer = make_layer(case, dropout=0.0, bias=False)
    x = torch.randn(2, 6, D_IN, generator=torch.Generator().manual_seed(6))
    layer.eval()
    normal = layer(x)
    layer.gate_skip_threshold = 0.99
    assert torch.equal(layer(x), normal)  # eval, but autograd records
    layer.train()
    with torch.no_grad():
        assert torch.equal(layer(x), normal)  # no grad, but training


@pytest.mark.parametrize("case", GATED, ids=ids(GATED))
def test_thresholds_zero_and_one_and_the_whole_model(case):
    model = make_tiny_llama()
    summary = case.build(r=4, gate_weight_init_std=0.5).apply(model)
    randomize_adapters(model)
    model.eval()  # apply() adds its layers in training mode
    input_ids = torch.randint(3, 128, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        normal = model(input_ids=input_ids).logits
        with gate_skip_threshold(model, 0.0), count_skipped_tokens(model) as none_skipped:
            torch.testing.assert_close(model(input_ids=input_ids).logits, normal, rtol=RTOL, atol=ATOL)
        with gate_skip_threshold(model, 1.0), count_skipped_tokens(model) as all_skipped:
            skipped_logits = model(input_ids=input_ids).logits
        set_adapters_enabled(model, False)
        base_logits = model(input_ids=input_ids).logits
        set_adapters_enabled(model, True)
    assert torch.equal(skipped_logits, base_logits)
    assert not torch.allclose(normal, base_logits)
    assert none_skipped.fraction == 0.0 and all_skipped.fraction == 1.0
    assert all_skipped.total == 2 * 9 * len(summary.adapted_modules)  # tokens x adapted modules
    assert all(layer.gate_skip_threshold is None for _, layer in adapter_layers(model))


def test_threshold_validation_and_setter():
    model = make_tiny_llama()
    layers = len(GATED[0].build(r=4).apply(model).adapted_modules)
    for bad in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ConfigError, match="gate_skip_threshold"):
            set_gate_skip_threshold(model, bad)
    assert set_gate_skip_threshold(model, 0.25) == layers
    assert {layer.gate_skip_threshold for _, layer in adapter_layers(model)} == {0.25}
    assert set_gate_skip_threshold(model, None) == layers
    ungated = make_tiny_llama()
    GATED[0].build(r=4, gate=False).apply(ungated)
    with pytest.raises(ConfigError, match="gated"):
        evaluate_gate_skip(ungated, lambda m: 0.0)


@pytest.mark.parametrize("case", GATED, ids=ids(GATED))
def test_evaluate_gate_skip_reports_metric_fraction_and_restores_state(case):
    model = make_tiny_llama()
    case.build(r=4, gate_weight_init_std=0.5).apply(model)
    randomize_adapters(model)
    model.train()
    input_ids = torch.randint(3, 128, (2, 8), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        model.eval()
        reference = model(input_ids=input_ids).logits
        model.train()

    def max_logit_change(m):
        assert not m.training and not torch.is_grad_enabled()
        return (m(input_ids=input_ids).logits - reference).abs().max().item()

    results = evaluate_gate_skip(model, max_logit_change, thresholds=(None, 0.5, 1.0))
    assert [r.threshold for r in results] == [None, 0.5, 1.0]
    assert results[0].metric == 0.0 and results[0].skipped_fraction == 0.0
    assert 0.0 < results[1].skipped_fraction < 1.0 and results[1].metric > 0.0
    assert results[2].skipped_fraction == 1.0
    assert all(r.seconds > 0 for r in results)
    assert model.training
    assert all(layer.gate_skip_threshold is None for _, layer in adapter_layers(model))
