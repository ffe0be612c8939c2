"""Inference-time gate skipping: tokens whose gate is below a threshold skip the adapter entirely.

With ``layer.gate_skip_threshold = tau`` a gated `AdapterLinear` in eval mode and without autograd
(``torch.no_grad()`` / ``torch.inference_mode()``) computes

    y_t = W0 x_t + b                          if g_t <  tau   (exactly the base output)
    y_t = W0 x_t + b + g_t * DeltaW(x_t)      if g_t >= tau

so the update costs only the kept tokens. In training, or whenever autograd records, the threshold is
ignored and the layer computes the soft gate as always. Skipping changes the model's output (by at most
``tau * |DeltaW(x_t)|`` per skipped token); `evaluate_gate_skip` measures what it does to a task metric.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import AdapterLinear, gated_layers
from gatera_lab.adapters.gate_skip_forward import (
    GATHER_MIN_SKIPPED_FRACTION,
    forward_gated_skipping,
    skip_active,
)
from gatera_lab.errors import ConfigError

__all__ = [
    "GATHER_MIN_SKIPPED_FRACTION",
    "GateSkipResult",
    "SkipCount",
    "count_skipped_tokens",
    "evaluate_gate_skip",
    "forward_gated_skipping",
    "gate_skip_threshold",
    "set_gate_skip_threshold",
    "skip_active",
    "validate_threshold",
]


def validate_threshold(threshold: float | None) -> float | None:
    """``None`` (no skipping) or a number in [0, 1]; raises `ConfigError` naming ``gate_skip_threshold``."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"option 'gate_skip_threshold' must be None or lie in [0, 1], got {threshold!r}")
    return float(threshold)


def set_gate_skip_threshold(model: nn.Module, threshold: float | None) -> int:
    """Set ``gate_skip_threshold`` on every gated layer of ``model``; returns how many layers were set."""
    threshold = validate_threshold(threshold)
    count = 0
    for _, layer in gated_layers(model):
        layer.gate_skip_threshold = threshold
        count += 1
    return count


@contextlib.contextmanager
def gate_skip_threshold(model: nn.Module, threshold: float | None) -> Iterator[nn.Module]:
    """Within the block every gated layer uses ``threshold``; the previous thresholds come back after."""
    threshold = validate_threshold(threshold)
    previous = [(layer, layer.gate_skip_threshold) for _, layer in gated_layers(model)]
    try:
        for layer, _ in previous:
            layer.gate_skip_threshold = threshold
        yield model
    finally:
        for layer, value in previous:
            layer.gate_skip_threshold = value


@dataclass
class SkipCount:
    """Tokens (summed over gated layers and forwards) whose gate fell below each layer's threshold."""

    skipped: int = 0
    total: int = 0

    @property
    def fraction(self) -> float:
        return self.skipped / self.total if self.total else 0.0


@contextlib.contextmanager
def count_skipped_tokens(model: nn.Module) -> Iterator[SkipCount]:
    """Count, in every forward within the block, the (layer, token) pairs that the skip path skips."""
    count = SkipCount()
    pending: list[Tensor] = []
    handles = []
    for _, layer in gated_layers(model):

        def hook(_module: nn.Module, _inputs: Any, gate: Tensor, layer: AdapterLinear = layer) -> None:
            if skip_active(layer):
                pending.append((gate < layer.gate_skip_threshold).sum())
            count.total += gate.numel()

        handles.append(layer.token_gate.register_forward_hook(hook))
    try:
        yield count
    finally:
        for handle in handles:
            handle.remove()
        count.skipped = int(torch.stack(pending).sum().item()) if pending else 0


@dataclass
class GateSkipResult:
    """One evaluation of a model with one skip threshold."""

    threshold: float | None
    metric: Any
    skipped_fraction: float
    seconds: float


def evaluate_gate_skip(
    model: nn.Module,
    evaluate: Callable[[nn.Module], Any],
    thresholds: Sequence[float | None] = (None, 0.1, 0.25, 0.5),
) -> list[GateSkipResult]:
    """Run ``evaluate(model)`` once per threshold (``None``: no skipping), in eval mode without grad.

    ``evaluate`` is any task evaluation (accuracy on a test set, perplexity, ...) that runs the model's
    forward; this function records what it returns, how long it took and the fraction of (layer, token)
    pairs whose adapter was skipped. The model's thresholds and training mode are restored afterwards.

    Args:
        model: a model with gated adapter layers.
        evaluate: called with ``model``; its return value is stored as ``metric``.
        thresholds: the gate thresholds to compare; include ``None`` for the unskipped reference.
    """
    if not gated_layers(model):
        raise ConfigError("evaluate_gate_skip needs a model with gated adapters (a *_gate method)")
    was_training = model.training
    results = []
    model.eval()
    try:
        for threshold in thresholds:
            with torch.no_grad(), gate_skip_threshold(model, threshold), count_skipped_tokens(model) as count:
                start = time.perf_counter()
                metric = evaluate(model)
                seconds = time.perf_counter() - start
            results.append(GateSkipResult(threshold, metric, count.fraction, seconds))
    finally:
        model.train(was_training)
    return results
