"""A subclass that redefines `delta` is run by it, not by its parent's fast paths that bypass `delta`."""

from __future__ import annotations

import pytest
import torch

from gatera_lab import adapter_layers
from gatera_lab.methods.lora import LoRA
from tests.conftest import make_tiny_llama, randomize_adapters


class DoubledLoRA(LoRA):
    def delta(self, layer, x, base_out):
        return 2 * super().delta(layer, x, base_out)


@pytest.mark.parametrize("gate", [False, True])
def test_overridden_delta_is_used(gate: bool) -> None:
    updates = []
    x = torch.randn(2, 5, 32)  # (B, T, d_in) of the tiny Llama's q_proj
    for method in (LoRA(r=4, gate=gate), DoubledLoRA(r=4, gate=gate)):
        torch.manual_seed(0)
        model = make_tiny_llama()
        method.apply(model)
        randomize_adapters(model)
        layer = dict(adapter_layers(model))["model.layers.0.self_attn.q_proj"]
        with torch.no_grad():
            updates.append(layer(x) - layer.base_layer(x))  # (B, T, d_out)
    torch.testing.assert_close(updates[1], 2 * updates[0], rtol=1e-5, atol=1e-6)
