"""Unmerging recovers ``W0`` whatever ``DeltaW`` depends on: a method that only defines a ``W0``-dependent
``delta_weight`` merges and unmerges exactly; LoRA keeps nothing while merged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatera_lab import adapter_layers
from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.methods.lora import LoRA, low_rank_factors
from gatera_lab.registry import build_method
from tests.conftest import make_tiny_llama, randomize_adapters


class BaseScaledLowRank(LoRA):
    """``DeltaW = s (B A) ⊙ W0``: an update that depends on ``W0``, defined only by `delta` and `delta_weight`
    (it inherits LoRA's ``delta_weight_uses_base = False``, which redefining `delta_weight` overrides)."""

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        return low_rank_factors(base_layer, self.r)

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        return F.linear(x, self.delta_weight(layer, layer.base_layer.weight))  # (..., d_out)

    def delta_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        return self.scaling * (layer.lora_B @ layer.lora_A) * base_weight  # (d_out, d_in)


def test_a_base_dependent_update_unmerges_to_the_original_weight() -> None:
    model = make_tiny_llama()
    BaseScaledLowRank(r=4).apply(model)
    randomize_adapters(model, std=0.3)
    originals = {name: layer.base_layer.weight.detach().clone() for name, layer in adapter_layers(model)}
    for _, layer in adapter_layers(model):
        layer.merge()
        assert not torch.equal(layer.base_layer.weight, originals[_])
        layer.unmerge()
        torch.testing.assert_close(layer.base_layer.weight, originals[_], rtol=1e-6, atol=1e-6)
        assert layer.merge_cache == {}


def test_redefining_delta_weight_below_lora_counts_as_depending_on_the_base() -> None:
    assert BaseScaledLowRank.delta_weight_uses_base and not LoRA.delta_weight_uses_base


def test_lora_keeps_nothing_while_merged() -> None:
    model = make_tiny_llama()
    build_method("lora", r=4).apply(model)
    randomize_adapters(model)
    for _, layer in adapter_layers(model):
        original = layer.base_layer.weight.detach().clone()
        layer.merge()
        assert layer.merge_cache == {}
        layer.unmerge()
        torch.testing.assert_close(layer.base_layer.weight, original, rtol=1e-6, atol=1e-6)
