"""The generic contract of an adapter method, as checks any method can be run through.

`method_cases` lists what the matrix runs: every registered method class and the user method of
tests/helpers/user_method.py, each ungated and gated. Every expectation is derived from the method itself (its
`init_parameters` on the adapted layer, whether it overrides `delta_weight`), never from its name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gatera_lab import (
    AdapterMethod,
    MergeError,
    TokenGate,
    adapter_layers,
    adapter_parameters,
    adapter_state_dict,
    registry_entries,
)
from gatera_lab.adapters.target_matching import find_target_linears
from gatera_lab.export import export_adapter, load_adapter
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.user_method import OutputShift


@dataclass(frozen=True)
class MethodCase:
    """One method class, ungated or gated."""

    method_class: type[AdapterMethod]
    gate: bool

    def build(self, **kwargs: Any) -> AdapterMethod:
        return self.method_class(**{"gate": self.gate, **kwargs})

    @property
    def id(self) -> str:
        return self.build().name  # "lora", "lora_gate", "OutputShift+gate", ...

    @property
    def mergeable(self) -> bool:
        """Ungated, and the class states its dense update (`delta_weight` or `merged_weight`)."""
        own = [cls for cls in self.method_class.__mro__ if cls not in (AdapterMethod, object)]
        return not self.gate and any("delta_weight" in vars(c) or "merged_weight" in vars(c) for c in own)


def method_cases(*extra_classes: type[AdapterMethod]) -> list[MethodCase]:
    """Every registered class, the user method and ``extra_classes``, each ungated and gated."""
    classes = dict.fromkeys(entry.method_class for entry in registry_entries().values())
    classes.update(dict.fromkeys((OutputShift, *extra_classes)))
    return [MethodCase(method_class, gate) for method_class in classes for gate in (False, True)]


def adapted(case: MethodCase, **kwargs: Any) -> tuple[nn.Module, Any]:
    model = make_tiny_llama()
    summary = case.build(**{"r": 4, "alpha": 8, **kwargs}).apply(model)
    return model, summary


def logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def expected_parameter_shapes(layer: nn.Module) -> dict[str, torch.Size]:
    """What the layer's method says it adds (`init_parameters`), plus a `TokenGate` if it is gated."""
    shapes = {name: p.shape for name, p in layer.method.init_parameters(layer.base_layer).items()}
    if layer.method.gate:
        gate = TokenGate(layer.in_features)
        shapes.update({f"token_gate.{name}": p.shape for name, p in gate.named_parameters()})
    return shapes


def check_identity_at_initialisation(case: MethodCase, batch: dict[str, torch.Tensor]) -> None:
    """An adapter starts as the identity on every targeted linear layer."""
    base_logits = logits(make_tiny_llama(), batch)
    model, summary = adapted(case)
    targets = find_target_linears(make_tiny_llama(), case.build().target_modules)
    assert summary.adapted_modules == list(targets)
    torch.testing.assert_close(logits(model, batch), base_logits, rtol=0, atol=1e-6)


def check_trainable_parameters(case: MethodCase) -> None:
    """The trainable tensors are exactly what `init_parameters` (and the gate) make, and the summary counts them."""
    model, summary = adapted(case)
    expected = 0
    for name, layer in adapter_layers(model):
        shapes = expected_parameter_shapes(layer)
        assert {n: p.shape for n, p in layer.named_adapter_parameters()} == shapes, name
        expected += sum(shape.numel() for shape in shapes.values())
    assert summary.trainable_parameters == expected > 0
    assert sum(p.numel() for p in adapter_parameters(model)) == expected
    total = sum(p.numel() for p in model.parameters())
    assert summary.total_parameters == total
    assert summary.trainable_percent == pytest.approx(100 * expected / total)


def check_only_adapter_parameters_get_gradients(case: MethodCase, batch: dict[str, torch.Tensor]) -> None:
    model, _ = adapted(case)
    randomize_adapters(model)
    model(**batch).logits.square().mean().backward()
    trainable = {id(p) for p in adapter_parameters(model)}
    for name, parameter in model.named_parameters():
        if id(parameter) in trainable:
            assert parameter.requires_grad and parameter.grad is not None, name
            assert parameter.grad.abs().sum() > 0, name
        else:
            assert not parameter.requires_grad and parameter.grad is None, name


def check_optimizer_step_leaves_base_weights_bit_identical(
    case: MethodCase, batch: dict[str, torch.Tensor]
) -> None:
    model, _ = adapted(case)
    randomize_adapters(model)
    adapter_keys = adapter_state_dict(model)
    before = {k: v.clone() for k, v in model.state_dict().items() if k not in adapter_keys}
    adapters_before = {k: v.clone() for k, v in adapter_keys.items()}
    optimizer = torch.optim.AdamW(adapter_parameters(model), lr=1e-2, weight_decay=0.1)
    model(**batch).logits.square().mean().backward()
    optimizer.step()
    after = model.state_dict()
    assert all(torch.equal(after[key], value) for key, value in before.items())
    assert any(not torch.equal(after[key], value) for key, value in adapters_before.items())


def check_merge(case: MethodCase, batch: dict[str, torch.Tensor]) -> None:
    """Mergeable: merge and unmerge are idempotent and exact to fp32 rounding; otherwise a `MergeError`."""
    model, _ = adapted(case)
    randomize_adapters(model)
    if not case.mergeable:
        _, layer = next(adapter_layers(model))
        with pytest.raises(MergeError, match="gated" if case.gate else "delta_weight"):
            layer.merge()
        return
    weights_before = {k: v.clone() for k, v in model.state_dict().items()}
    unmerged = logits(model, batch)
    for _, layer in adapter_layers(model):
        layer.merge()
        layer.merge()
    torch.testing.assert_close(logits(model, batch), unmerged, rtol=1e-5, atol=1e-5)
    for _, layer in adapter_layers(model):
        layer.unmerge()
        layer.unmerge()
    torch.testing.assert_close(logits(model, batch), unmerged, rtol=1e-5, atol=1e-5)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, weights_before[key], rtol=1e-5, atol=1e-6)


def check_state_dict_and_deepcopy(case: MethodCase, batch: dict[str, torch.Tensor]) -> None:
    source, _ = adapted(case)
    randomize_adapters(source, seed=3)
    state = adapter_state_dict(source)
    assert all(".base_layer." not in key for key in state)
    target, _ = adapted(case)
    result = target.load_state_dict(state, strict=False)
    assert not result.unexpected_keys and set(result.missing_keys).isdisjoint(state)
    assert torch.equal(logits(target, batch), logits(source, batch))
    assert torch.equal(logits(copy.deepcopy(source), batch), logits(source, batch))


def check_export_round_trip(case: MethodCase, batch: dict[str, torch.Tensor], folder: Path) -> None:
    """`export_adapter` in its automatic format, then `load_adapter` into a fresh base: the same method back."""
    model, _ = adapted(case)
    method = next(adapter_layers(model))[1].method
    randomize_adapters(model, seed=4)
    out = export_adapter(model, method, folder, "tiny-llama")
    reloaded = make_tiny_llama()
    rebuilt = load_adapter(reloaded, out)
    assert type(rebuilt) is case.method_class and rebuilt.hparams() == method.hparams()
    torch.testing.assert_close(logits(reloaded, batch), logits(model, batch), rtol=1e-6, atol=1e-6)


MATRIX_CHECKS = (
    check_identity_at_initialisation,
    check_only_adapter_parameters_get_gradients,
    check_optimizer_step_leaves_base_weights_bit_identical,
    check_merge,
    check_state_dict_and_deepcopy,
)
"""The checks that take ``(case, batch)``; `check_trainable_parameters` and `check_export_round_trip` differ."""
