"""Custom autograd functions under autocast: cast their inputs as ``F.linear`` would, then run them."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def apply_under_autocast(
    function: type[torch.autograd.Function], x: Tensor, *args: Any, keep: tuple[int, ...] = ()
) -> Tensor:
    """``function.apply(x, *args)``; under autocast, with every floating tensor cast to the autocast dtype
    first and autocast off inside (the functions multiply their inputs directly, as ``F.linear`` under
    autocast would after casting them). The tensors at positions ``keep`` of ``args`` are passed as they
    are (values the function combines in float32 before it casts them itself)."""
    device_type = x.device.type
    if not torch.is_autocast_enabled(device_type):
        return function.apply(x, *args)
    dtype = torch.get_autocast_dtype(device_type)
    cast = [x.to(dtype)] + [
        a.to(dtype) if isinstance(a, Tensor) and a.is_floating_point() and i not in keep else a
        for i, a in enumerate(args)
    ]
    with torch.autocast(device_type, enabled=False):
        return function.apply(*cast)
