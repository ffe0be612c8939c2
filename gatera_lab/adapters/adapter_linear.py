"""`AdapterLinear`: a frozen ``nn.Linear`` with one adapter (and optionally a token gate) beside it.

The layer holds state (the base layer, the method's parameters, the gate, the merged flag); the
`AdapterMethod` it was built by holds the math. Forward:

    y = W0 x + b                          merged, or the adapter disabled
    y = W0 x + b + DeltaW(dropout(x))      ungated
    y = W0 x + b + g(x) * DeltaW(dropout(x))  gated, g(x) = sigmoid(w . x + b_g) one scalar per token

Beside a bfloat16/float16 base the adapter and gate tensors are float32 master weights, and the output has
the base's dtype (`gatera_lab.adapters.precision_policy`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gatera_lab.adapters.gate_skip_forward import forward_gated_skipping, skip_active
from gatera_lab.adapters.precision_policy import (
    as_master_parameter,
    input_dtype_autocast,
    master_dtype,
    needs_input_dtype_autocast,
)
from gatera_lab.adapters.token_gate import TokenGate
from gatera_lab.errors import MergeError

if TYPE_CHECKING:
    from gatera_lab.adapters.adapter_method import AdapterMethod


class AdapterLinear(nn.Module):
    """A frozen linear layer plus the adapter parameters and token gate of one `AdapterMethod`."""

    def __init__(self, base_layer: nn.Linear, method: AdapterMethod) -> None:
        """
        Args:
            base_layer: the frozen layer ``y = W0 x + b`` (kept as ``base_layer``).
            method: the method whose parameters are created here and whose update is applied.
        """
        super().__init__()
        self.base_layer = base_layer
        self.method = method
        self.in_features = base_layer.in_features
        self.out_features = base_layer.out_features
        self.dropout: nn.Module = nn.Dropout(method.dropout) if method.dropout > 0 else nn.Identity()
        for name, parameter in method.init_parameters(base_layer).items():
            self.register_parameter(name, as_master_parameter(parameter))  # float32 beside a half base
        self.token_gate: TokenGate | None = None
        if method.gate:
            self.token_gate = TokenGate(self.in_features, method.gate_bias, method.gate_weight_init_std).to(
                device=base_layer.weight.device, dtype=master_dtype(base_layer.weight.dtype)
            )
        self.merged = False
        self.adapter_enabled = True
        self.gate_skip_threshold: float | None = None  # eval + no grad only, see `gate_skip`
        self.merge_cache: dict[str, Tensor] = {}  # what a method needs to unmerge exactly

    @property
    def weight(self) -> Tensor:
        """The base weight ``W0`` (d_out, d_in), for code that inspects ``module.weight``."""
        return self.base_layer.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base_layer.bias

    def forward(self, x: Tensor) -> Tensor:  # x: (..., d_in) -> (..., d_out)
        if self.merged or not self.adapter_enabled:
            return self.base_layer(x)
        adapter_dtype = next(iter(self._parameters.values()), self.weight).dtype  # a method parameter's
        if needs_input_dtype_autocast(x, adapter_dtype):  # float32 adapter, half base, no autocast around
            with input_dtype_autocast(x):
                return self.adapter_forward(x).to(x.dtype)
        return self.adapter_forward(x)

    def adapter_forward(self, x: Tensor) -> Tensor:  # x: (..., d_in) -> (..., d_out)
        """The method's (gated) forward, in whatever autocast state the caller set."""
        if self.token_gate is None:
            return self.method.forward_ungated(self, x)
        gate = self.token_gate(x)  # (..., 1)
        if skip_active(self):
            return forward_gated_skipping(self, x, gate, self.gate_skip_threshold)
        return self.method.forward_gated(self, x, gate)

    def named_adapter_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """The method's parameters and the gate's, never the base layer's."""
        for name, parameter in self.named_parameters():
            if not name.startswith("base_layer."):
                yield name, parameter

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into ``W0`` (idempotent). Gated layers refuse: their update depends on each token."""
        if self.token_gate is not None:
            raise MergeError(
                f"method {self.method.name!r} is gated: its update g(x) * DeltaW(x) depends on each token's "
                "gate, so it cannot be folded into W0. Export it with `gatera-lab export` instead."
            )
        if self.merged:
            return
        weight = self.base_layer.weight
        weight.copy_(self.method.merged_weight(self, weight.detach().clone()).to(weight.dtype))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore ``W0`` from the merged weight (idempotent)."""
        if not self.merged:
            return
        weight = self.base_layer.weight
        weight.copy_(self.method.unmerged_weight(self, weight.detach().clone()).to(weight.dtype))
        self.merged = False

    def extra_repr(self) -> str:
        return f"method={self.method.name}, r={self.method.r}, merged={self.merged}"


def gated_layers(model: nn.Module | None) -> list[tuple[str, AdapterLinear]]:
    """Every `AdapterLinear` of ``model`` that has a token gate, by full module name (empty if ungated)."""
    if model is None:
        return []
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, AdapterLinear) and module.token_gate is not None
    ]
