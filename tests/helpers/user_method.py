"""A method defined outside the package, as a researcher would: one small file, no registration."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gatera_lab import AdapterLinear, AdapterMethod


class OutputShift(AdapterMethod):
    """``DeltaW(x) = s * c``: a learned shift ``c`` (d_out,) of each output, the same for every token.

    Gated, the shift becomes token-dependent: ``g(x) * s * c``.
    """

    def __init__(self, shift_init: float = 0.0, **kwargs) -> None:
        """
        Args:
            shift_init: initial value of every entry of ``c``.
            **kwargs: the shared options of `AdapterMethod` (r, alpha, dropout, target_modules, gate, ...).
        """
        super().__init__(**kwargs)
        self.shift_init = shift_init

    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        weight = base_layer.weight
        shift = torch.full(
            (base_layer.out_features,), self.shift_init, device=weight.device, dtype=weight.dtype
        )
        return {"shift": nn.Parameter(shift)}

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        return (self.scaling * layer.shift).expand_as(base_out)  # (..., d_out)
