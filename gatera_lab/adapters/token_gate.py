"""The GateRA token gate and its entropy regulariser.

For the input ``x_t`` of an adapted module ``l`` at token ``t`` the gate is a scalar

    g_t = sigmoid(z_t),    z_t = w_l . x_t + b_l,

and the gated layer computes ``y_t = W0 x_t + g_t * DeltaW(x_t)``. Because ``g_t`` multiplies the update,
every adapter gradient coming from token ``t`` is scaled by ``g_t`` (soft gradient masking):
``dL/dtheta = sum_t g_t J_t^T delta_t``.

The regulariser is the binary entropy ``H(g) = -g log g - (1 - g) log(1 - g)``, averaged over real
(non-padding) tokens; adding ``lambda * mean_t H(g_t)`` to the loss pushes gates toward 0 or 1. It is
computed from the logit for stability: ``H = g * softplus(-z) + (1 - g) * softplus(z)``.

The module is called ``token_gate`` inside each adapted layer: Llama's MLP already has a ``gate_proj``.

A gate keeps nothing between calls. Who needs its logits asks for them for a scope: `capture_gate_logits`
(the entropy regulariser of one step) or `gate_logit_sink` (diagnostics) installs a sink that `forward`
feeds while the scope lasts; `forced_gate_value` replaces every gate's value for a scope (tests, parity).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LogitSink = Callable[[Tensor], None]


class TokenGate(nn.Module):
    """``g = sigmoid(w . x + b)``: one scalar gate per token, computed from the adapted module's input.

    Each forward hands its logits (..., T) to the sinks installed by `gate_logit_sink` (none outside such
    a scope); `forced_gate_value` makes it return a constant for a scope.
    """

    def __init__(
        self, in_features: int, bias_init: float = 0.0, weight_init_std: float | None = None
    ) -> None:
        """
        Args:
            in_features: size of the adapted module's input.
            bias_init: initial bias ``b``.
            weight_init_std: standard deviation of the initial ``w``; None: ``1 / sqrt(in_features)``, so
                the initial logit ``w . x`` has about the spread of the input's root mean square and tokens
                start at different gates. With 0 every gate starts at ``sigmoid(bias_init)``; at 0.5
                the entropy's gradient ``dH/dz = -z g (1 - g)`` is zero, so the regulariser cannot act until
                the task loss has moved the gates (a test shows this).
        """
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, in_features))  # (1, d_in)
        self.bias = nn.Parameter(torch.full((1,), float(bias_init)))  # (1,)
        if weight_init_std is None:
            weight_init_std = in_features**-0.5
        if weight_init_std > 0:
            nn.init.normal_(self.weight, std=weight_init_std)
        self._logit_sinks: list[LogitSink] = []  # installed and removed by gate_logit_sink only
        self._forced_value: float | None = None  # set and restored by forced_gate_value only

    def logits(self, x: Tensor) -> Tensor:
        """``z = w . x + b`` for every token: (..., d_in) -> (..., 1)."""
        return F.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))  # (..., 1)

    def forward(self, x: Tensor) -> Tensor:
        """The gate values, shape (..., 1), broadcastable against the update (..., d_out)."""
        if self._forced_value is not None:
            return x.new_full((*x.shape[:-1], 1), self._forced_value)  # (..., 1), no logits to hand over
        z = self.logits(x)  # (..., 1)
        for sink in self._logit_sinks:
            sink(z.squeeze(-1))  # (..., T)
        return torch.sigmoid(z)  # (..., 1)

    def extra_repr(self) -> str:
        return f"in_features={self.weight.shape[1]}"


def token_gates(model: nn.Module) -> list[TokenGate]:
    """Every `TokenGate` of ``model``, in module order."""
    return [module for module in model.modules() if isinstance(module, TokenGate)]


@contextlib.contextmanager
def gate_logit_sink(gate: TokenGate, sink: LogitSink) -> Iterator[None]:
    """Within the block every forward of ``gate`` calls ``sink(z)`` with its logits ``z`` (..., T)."""
    gate._logit_sinks.append(sink)
    try:
        yield
    finally:
        gate._logit_sinks = [installed for installed in gate._logit_sinks if installed is not sink]


@dataclass
class GateLogits:
    """The gate logits of the forwards run within one `capture_gate_logits` block."""

    by_gate: list[list[Tensor]] = field(
        default_factory=list
    )  # per gate (module order), per forward: (..., T)

    def latest(self) -> list[Tensor]:
        """The logits of each gate's latest forward (gates that did not run, or were forced, are left out)."""
        return [logits[-1] for logits in self.by_gate if logits]


@contextlib.contextmanager
def capture_gate_logits(model: nn.Module) -> Iterator[GateLogits]:
    """Collect the logits of every `TokenGate` of ``model`` in the forwards run within the block.

    The logits stay attached to the autograd graph (the entropy regulariser backpropagates through them).
    """
    gates = token_gates(model)
    captured = GateLogits([[] for _ in gates])
    with contextlib.ExitStack() as scope:
        for gate, logits in zip(gates, captured.by_gate, strict=True):
            scope.enter_context(gate_logit_sink(gate, logits.append))
        yield captured


@contextlib.contextmanager
def forced_gate_value(model: nn.Module, value: float) -> Iterator[nn.Module]:
    """Within the block every `TokenGate` of ``model`` returns ``value`` for every token (and no logits)."""
    gates = token_gates(model)
    previous = [gate._forced_value for gate in gates]
    try:
        for gate in gates:
            gate._forced_value = float(value)
        yield model
    finally:
        for gate, forced in zip(gates, previous, strict=True):
            gate._forced_value = forced


def binary_entropy_from_logits(logits: Tensor) -> Tensor:
    """``H(sigmoid(z))`` elementwise, in nats, stable for large ``|z|``."""
    gate = torch.sigmoid(logits)
    return gate * F.softplus(-logits) + (1 - gate) * F.softplus(logits)


def masked_gate_entropy(logits: list[Tensor], token_mask: Tensor | None) -> Tensor:
    """Mean binary entropy of the gates over modules and real tokens.

    Args:
        logits: one (B, T) tensor of gate logits per adapted module.
        token_mask: (B, T), 1 for real tokens and 0 for padding; ``None`` counts every token.

    Returns:
        A scalar: ``mean_l sum_t m_t H(g_lt) / sum_t m_t``.
    """
    if not logits:
        raise ValueError("masked_gate_entropy needs the logits of at least one gate")
    stacked = torch.stack([z.float() for z in logits])  # (L, B, T)
    entropy = binary_entropy_from_logits(stacked)  # (L, B, T)
    if token_mask is None:
        return entropy.mean()
    mask = token_mask.to(entropy.dtype).unsqueeze(0)  # (1, B, T)
    real_tokens = mask.sum() * stacked.shape[0]
    return (entropy * mask).sum() / real_tokens.clamp_min(1.0)
