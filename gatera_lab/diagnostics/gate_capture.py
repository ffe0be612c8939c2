"""`GateCapture`: forward hooks that keep the gate values of every gated module, detached.

Hooks (and the gates' logit sinks, `gatera_lab.adapters.token_gate.gate_logit_sink`) exist only between
`start` and `stop`, so a step that is not diagnosed pays nothing. What is kept is
the gate ``g`` (B, T) and its logit ``z`` (B, T), both detached from the autograd graph (they share storage
with tensors the step keeps anyway; no activation outlives the step because of them). With
``keep_all=False`` only the first forward of each module is kept: under activation checkpointing the
recomputation in backward is ignored. With ``keep_all=True`` every forward is kept in order (one prefill
pass and one pass per decoded token during generation).
"""

from __future__ import annotations

import contextlib

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.adapters.token_gate import TokenGate, gate_logit_sink

__all__ = ["GateCapture", "gated_layers"]


class GateCapture:
    """Collects the gates of every gated module of ``model`` while started."""

    def __init__(self, model: nn.Module, keep_all: bool = False) -> None:
        """
        Args:
            model: the model whose gated `AdapterLinear` layers to watch.
            keep_all: keep every forward (generation) instead of the first one per module (training).
        """
        self.layers = gated_layers(model)
        self.keep_all = keep_all
        self.gates: dict[str, list[Tensor]] = {}
        self.logits: dict[str, list[Tensor | None]] = {}
        self._handles: list[RemovableHandle] = []
        self._sinks = contextlib.ExitStack()
        self._pending_logits: dict[str, Tensor] = {}  # the running forward's logits, until its hook

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def start(self) -> None:
        """Forget what was kept and install one logit sink and one forward hook per token gate."""
        self.stop()
        self.gates, self.logits = {}, {}
        for name, layer in self.layers:
            self._sinks.enter_context(gate_logit_sink(layer.token_gate, self._sink(name)))
            self._handles.append(layer.token_gate.register_forward_hook(self._hook(name)))

    def stop(self) -> None:
        """Remove every hook and sink; what was kept stays readable."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._sinks.close()
        self._pending_logits = {}

    def _sink(self, name: str):
        def hand_over(logits: Tensor) -> None:  # (B, T), called by the gate's forward before its hook
            self._pending_logits[name] = logits

        return hand_over

    def _hook(self, name: str):
        def keep(module: TokenGate, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            logits = self._pending_logits.pop(name, None)  # None: the gate was forced, no logits
            if name in self.gates and not self.keep_all:
                return
            self.gates.setdefault(name, []).append(output.detach().squeeze(-1))  # (B, T)
            self.logits.setdefault(name, []).append(None if logits is None else logits.detach())  # (B, T)

        return keep

    def first_gates(self) -> dict[str, Tensor]:
        """The (B, T) gates of each module's first kept forward."""
        return {name: values[0] for name, values in self.gates.items()}

    def first_logits(self) -> dict[str, Tensor | None]:
        """The (B, T) logits of each module's first kept forward (``None`` where the gate was forced)."""
        return {name: values[0] for name, values in self.logits.items()}
