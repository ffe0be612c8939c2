"""Statistics of GateRA gate values over real (non-padding) tokens, by module, layer and module type.

For the gates ``g_lt`` of a group of adapted modules ``l`` (one module, one layer, one module type, or all)
and the real tokens ``t`` (``attention_mask = 1``), pooled into one set ``S`` of ``N = |S|`` values:

    mean = sum_S g / N,    std = sqrt(sum_S (g - mean)^2 / N)   (population std, no Bessel correction)
    frac_low = |{g < low}| / N,    frac_high = |{g > high}| / N,    near_binary = frac_low + frac_high

with ``low = 0.1`` and ``high = 0.9`` by default. Every module of a group sees the same tokens, so the pooled
mean is also the mean of the per-module means. A module is a *dead adapter* when at least ``dead_fraction``
(0.99) of its real tokens have ``g < low``: its update, and every gradient it receives, is nearly switched off.

Module names are read as ``...layers.<i>...<kind>_proj``: the layer is the last integer component of the
name and the kind is the last component without its ``_proj`` suffix (``q``, ``k``, ``v``, ``up``, ``down``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gatera_lab.adapters.token_gate import masked_gate_entropy

LOW = 0.1
HIGH = 0.9
DEAD_FRACTION = 0.99


@dataclass(frozen=True)
class ModuleKey:
    """Where an adapted module sits: its decoder layer (``None`` if the name has no index) and its kind."""

    layer: int | None
    kind: str


def describe_module(name: str) -> ModuleKey:
    """``model.layers.3.self_attn.q_proj`` -> ``ModuleKey(layer=3, kind="q")``."""
    parts = name.split(".")
    layer = next((int(part) for part in reversed(parts) if part.isdigit()), None)
    return ModuleKey(layer, parts[-1].removesuffix("_proj"))


def short_name(name: str) -> str:
    """A compact label: ``model.layers.3.self_attn.q_proj`` -> ``L03.q``; names without a layer stay whole."""
    key = describe_module(name)
    return name if key.layer is None else f"L{key.layer:02d}.{key.kind}"


@dataclass(frozen=True)
class GateSummary:
    """Mean, population std and the shares of low and high gates of ``count`` gate values."""

    count: int
    mean: float
    std: float
    frac_low: float
    frac_high: float

    @property
    def near_binary(self) -> float:
        return self.frac_low + self.frac_high

    def as_scalars(self, prefix: str) -> dict[str, float]:
        """``{prefix}/mean``, ``/std``, ``/frac_low``, ``/frac_high``, ``/near_binary`` (empty if no values)."""
        if self.count == 0:
            return {}
        return {
            f"{prefix}/mean": self.mean,
            f"{prefix}/std": self.std,
            f"{prefix}/frac_low": self.frac_low,
            f"{prefix}/frac_high": self.frac_high,
            f"{prefix}/near_binary": self.near_binary,
        }


def summarize(values: Tensor, low: float = LOW, high: float = HIGH) -> GateSummary:
    """The `GateSummary` of a 1-D tensor of gate values."""
    values = values.detach().reshape(-1).double()  # (N,)
    count = values.numel()
    if count == 0:
        return GateSummary(0, math.nan, math.nan, math.nan, math.nan)
    mean = values.mean()
    return GateSummary(
        count=count,
        mean=float(mean),
        std=float(((values - mean) ** 2).mean().sqrt()),
        frac_low=float((values < low).double().mean()),
        frac_high=float((values > high).double().mean()),
    )


def select_tokens(gate: Tensor, token_mask: Tensor | None) -> Tensor:
    """The gate values (N,) of the tokens where ``token_mask`` (B, T) is nonzero; all tokens if ``None``."""
    gate = gate.detach()  # (B, T)
    if token_mask is None:
        return gate.reshape(-1)
    return gate[token_mask.to(gate.device) != 0]  # (N,)


def group_names(names: list[str]) -> dict[str, list[str]]:
    """Module names by group: ``all``, ``type_<kind>`` and ``layer_<ii>`` (zero-padded to the widest index)."""
    keys = {name: describe_module(name) for name in names}
    layers = [key.layer for key in keys.values() if key.layer is not None]
    width = len(str(max(layers))) if layers else 1
    groups: dict[str, list[str]] = {"all": list(names)}
    for name, key in keys.items():
        groups.setdefault(f"type_{key.kind}", []).append(name)
    for name, key in sorted(keys.items(), key=lambda item: (item[1].layer is None, item[1].layer or 0)):
        if key.layer is not None:
            groups.setdefault(f"layer_{key.layer:0{width}d}", []).append(name)
    return groups


def grouped_values(gates: dict[str, Tensor], token_mask: Tensor | None) -> dict[str, Tensor]:
    """For every group of `group_names`, the pooled gate values (N,) of its modules on the selected tokens."""
    selected = {name: select_tokens(gate, token_mask).float() for name, gate in gates.items()}
    return {
        group: torch.cat([selected[name] for name in members])
        for group, members in group_names(list(gates)).items()
    }


def grouped_summaries(
    gates: dict[str, Tensor], token_mask: Tensor | None, low: float = LOW, high: float = HIGH
) -> dict[str, GateSummary]:
    """`summarize` of every group's pooled values over the tokens of ``token_mask``.

    Args:
        gates: one (B, T) tensor of gate values per adapted module, by full module name.
        token_mask: (B, T), nonzero on the tokens to count (real tokens: ``attention_mask``).
        low: the threshold of ``frac_low``.
        high: the threshold of ``frac_high``.
    """
    return {
        group: summarize(values, low, high) for group, values in grouped_values(gates, token_mask).items()
    }


def prompt_response_means(
    gates: dict[str, Tensor], attention_mask: Tensor, response_mask: Tensor
) -> dict[str, tuple[float, float]]:
    """For every group, ``(mean gate on prompt tokens, mean gate on response tokens)``.

    Prompt tokens are real tokens outside the response (``attention_mask = 1, response_mask = 0``); response
    tokens are ``attention_mask = 1, response_mask = 1``. A group with no token of a kind gets NaN for it.
    """
    real = attention_mask != 0  # (B, T)
    response = real & (response_mask != 0)  # (B, T)
    prompt = real & (response_mask == 0)  # (B, T)
    prompt_values = grouped_values(gates, prompt)
    response_values = grouped_values(gates, response)
    return {
        group: (summarize(prompt_values[group]).mean, summarize(response_values[group]).mean)
        for group in prompt_values
    }


def dead_adapters(
    gates: dict[str, Tensor],
    token_mask: Tensor | None,
    low: float = LOW,
    dead_fraction: float = DEAD_FRACTION,
) -> list[str]:
    """The modules whose gate is below ``low`` on at least ``dead_fraction`` of the selected tokens."""
    dead = []
    for name, gate in gates.items():
        summary = summarize(select_tokens(gate, token_mask), low=low)
        if summary.count > 0 and summary.frac_low >= dead_fraction:
            dead.append(name)
    return dead


def binary_entropy(gate: Tensor) -> Tensor:
    """``H(g) = -g log g - (1 - g) log(1 - g)`` in nats, elementwise, with ``0 log 0 = 0``."""
    gate = gate.double()
    return -(torch.special.xlogy(gate, gate) + torch.special.xlogy(1 - gate, 1 - gate))


def mean_gate_entropy(
    gates: dict[str, Tensor], logits: dict[str, Tensor | None], token_mask: Tensor | None
) -> float:
    """``mean_{l,t} H(g_lt)`` over modules and real tokens: the regulariser `GateraModule` adds to the loss.

    Computed from the logits with `masked_gate_entropy` (exactly the training loss's formula) when every
    module has them, and from the gate values otherwise (forced gates keep no logits).
    """
    if gates and all(logits.get(name) is not None for name in gates):
        with torch.no_grad():
            return float(masked_gate_entropy([logits[name].detach() for name in gates], token_mask))
    values = torch.cat([select_tokens(gate, token_mask) for gate in gates.values()])  # (N,)
    return float(binary_entropy(values).mean()) if values.numel() else math.nan
