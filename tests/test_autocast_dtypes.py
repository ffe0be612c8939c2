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
