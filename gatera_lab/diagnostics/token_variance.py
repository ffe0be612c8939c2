"""How token-aware a gated adapter's gates are: their variance split into across tokens and across modules.

For the gates ``g_mt`` of the ``M`` gated modules ``m`` on the same ``N`` real tokens ``t`` (every module sees
every token), with module means ``gbar_m = sum_t g_mt / N`` and the overall mean ``gbar = sum_m gbar_m / M``,
the law of total variance splits the pooled (population) variance of all ``M N`` values exactly:

    within  = (1 / M) sum_m (1 / N) sum_t (g_mt - gbar_m)^2     (a module's gate changing from token to token)
    between = (1 / M) sum_m (gbar_m - gbar)^2                   (modules differing in their average gate)
    total   = within + between,      token_share = within / total

A static gate (one value per module, the GateRA paper's "static gate" ablation) has ``token_share = 0``;
gates that vary only with the token and not with the module have ``token_share = 1``. ``flips`` counts the
token-level decisions that differ from the module's: the share of ``(m, t)`` with ``[g_mt > 0.5]`` different
from ``[gbar_m > 0.5]`` (0 when every module is either open or closed on every token).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def token_variance_split(gates: Tensor) -> dict[str, float]:
    """``within``, ``between``, ``total``, ``token_share`` and ``flips`` of the module docstring.

    Args:
        gates: (M, N) the gate of each module on each real token.
    Returns: the five numbers (``token_share`` NaN when every gate is equal; all NaN for no values).
    """
    if gates.dim() != 2:
        raise ValueError(f"gates must be (modules, tokens), got shape {tuple(gates.shape)}")
    if gates.numel() == 0:
        return dict.fromkeys(("within", "between", "total", "token_share", "flips"), math.nan)
    values = gates.double()  # (M, N)
    module_means = values.mean(dim=1, keepdim=True)  # (M, 1)
    within = float(((values - module_means) ** 2).mean())
    between = float(((module_means - module_means.mean()) ** 2).mean())
    total = within + between
    flips = float(((values > 0.5) != (module_means > 0.5)).double().mean())
    return {
        "within": within,
        "between": between,
        "total": total,
        "token_share": within / total if total > 0 else math.nan,
        "flips": flips,
    }


def stacked_real_gates(chunks: dict[str, list[Tensor]]) -> Tensor:
    """(M, N): each module's gates on the real tokens of every batch, concatenated in one shared order.

    Args:
        chunks: module name -> per batch, the module's gates on that batch's real tokens (n_b,).
    """
    if not chunks:
        return torch.empty(0, 0, dtype=torch.float64)
    return torch.stack([torch.cat(parts).double().cpu() for parts in chunks.values()])  # (M, N)
