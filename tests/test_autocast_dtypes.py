"""Under bfloat16 autocast with float32 adapters, every adapted layer returns its input's dtype.

A layer that returned float32 would turn the residual stream to float32 from the first adapted module on:
every later activation twice the memory, every later norm and GEMM input cast again.
"""

from __future__ import annotations

import pytest
import torch

from gatera_lab import adapter_layers
from gatera_lab.registry import available_methods, build_method
from tests.conftest import make_tiny_llama, randomize_adapters


@pytest.mark.parametrize("method", available_methods())
def test_every_adapted_layer_keeps_the_bfloat16_residual_stream(method: str) -> None:
    model = make_tiny_llama().to(torch.bfloat16)
    build_method(method, r=4).apply(model)
    for _, layer in adapter_layers(model):
        for _, parameter in layer.named_adapter_parameters():
            parameter.data = parameter.data.float()
    randomize_adapters(model)
    seen: list[tuple[torch.dtype, torch.dtype]] = []
    for _, layer in adapter_layers(model):
        layer.register_forward_hook(lambda module, args, output: seen.append((args[0].dtype, output.dtype)))
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model.model(input_ids=torch.randint(0, 100, (2, 8))).last_hidden_state
    assert seen and all(output == torch.bfloat16 for _, output in seen), sorted(set(seen))
    assert hidden.dtype == torch.bfloat16


def float32_adapters(model: torch.nn.Module) -> None:
    """The adapter tensors in float32 beside a bfloat16 base, as `GateraModule` keeps them."""
    for _, layer in adapter_layers(model):
        for _, parameter in layer.named_adapter_parameters():
            parameter.data = parameter.data.float()


@pytest.mark.parametrize("method", available_methods())
def test_every_method_is_the_identity_at_step_0_on_a_bfloat16_base(method: str) -> None:
    """Before training, the adapted bfloat16 model under bf16 autocast gives the base model's logits bit for
    bit (DoRA: its magnitude and direction norm are the same float32 norm of W0, so m/n = 1 exactly)."""
    base = make_tiny_llama().to(torch.bfloat16).eval()
    input_ids = torch.randint(0, 100, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        expected = base(input_ids=input_ids).logits
    build_method(method, r=4).apply(base)
    float32_adapters(base)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        adapted = base(input_ids=input_ids).logits
    assert torch.equal(adapted, expected)


def test_gated_dora_keeps_a_magnitude_ratio_finer_than_bfloat16_steps() -> None:
    """m/n = 1 + 1e-3 (bfloat16's steps near 1 are 2^-8 and 2^-7): under bf16 autocast the gate's gradient,
    which with B = 0 is ``sum_d dL/dy_d (m/n - 1) (W0 x)_d`` per token, sees the 1e-3, not m/n rounded to 1."""
    model = make_tiny_llama().to(torch.bfloat16)
    build_method("dora_gate", r=4, gate_weight_init_std=0.0).apply(model)  # every gate at 0.5
    float32_adapters(model)
    _, layer = next(iter(adapter_layers(model)))
    layer.lora_magnitude.data *= 1 + 1e-3
    x = torch.randn(4, layer.base_layer.in_features, generator=torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        base_out = layer.base_layer(x).detach()  # (4, d_out) = W0 x
        (layer(x).float() * base_out.float()).sum().backward()  # dL/dy = W0 x
    expected = 0.25 * 1e-3 * (base_out.float() ** 2).sum()  # sum_t g(1-g) (m/n - 1) |W0 x_t|^2
    assert float(layer.token_gate.bias.grad) == pytest.approx(float(expected), rel=0.05)
