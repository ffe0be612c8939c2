"""Soft gradient masking, measured: the share of an adapter's gradient that comes from low-gate tokens.

A gated layer computes ``y_t = W0 x_t + g_t * DeltaW_theta(x_t)``. With the upstream gradient
``u_t = dL/dy_t`` of its output, the gradient of the method's parameters ``theta`` is

    G = dL/dtheta = sum_t (dy_t/dtheta)^T u_t = sum_t g_t (dDeltaW(x_t)/dtheta)^T u_t,

linear in ``u``. Splitting the tokens into ``T_low = {t real : g_t < tau}`` (``tau = 0.1``) and the rest
splits ``G`` exactly: ``G = G_low + G_rest`` with ``G_low = sum_{t in T_low} (dy_t/dtheta)^T u_t``.
`GradientMaskingProbe` measures per gated module, for one micro-batch:

- ``grad_norm = ||G||_F`` over the method's parameters (``lora_A``, ``lora_B``, ``lora_magnitude``, ...);
  the gate's own ``w`` and ``b`` are left out (their gradient also carries the entropy regulariser);
- ``low_gate_grad_share = ||G_low||_F / ||G||_F`` (above 1 only if ``G_low`` and ``G_rest`` cancel);
- ``low_gate_token_share = |T_low| / #real tokens``. Soft masking shows as a gradient share far below the
  token share: low-gate tokens are many but contribute little, since each contribution is scaled by ``g_t``.

How: while started, a forward pre-hook keeps each gated layer's input ``x`` (detached: it shares storage
with the copy autograd saves for the adapter's backward anyway), the RNG state and the autocast state, and a
tensor hook on the layer's output receives ``u`` during the backward. Right there the layer alone is
recomputed, ``y = layer(x)``, from the same RNG and autocast state (so dropout draws the same mask and the
precision is the same), and autograd is called twice on that small graph: with ``u`` (giving ``G``) and with
``u`` zeroed outside ``T_low`` (giving ``G_low``); then ``x`` and ``u`` are dropped, so at most one layer's
``u`` is held beyond what the backward holds itself. The model's own ``.grad`` is not touched. Cost on a
diagnosed step: one forward and two backward passes of each adapted layer alone. ``G`` is the gradient of
the loss Lightning back-propagates for this micro-batch (divided by ``accumulate_grad_batches``); the
shares do not depend on that factor. Activation checkpointing must be non-reentrant (the module's
default); its recomputation in backward is ignored. Under activation checkpointing the kept inputs are what
checkpointing would have freed, so on an accelerator they are kept in host memory (``offload_inputs``) and
brought back one layer at a time. The norms and counts stay on the device until `finish`, which reads them
all at once: no host synchronisation inside the backward.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.diagnostics.gate_statistics import LOW, group_names


@dataclass(frozen=True)
class GradientShare:
    """Gradient norms of one module (or of a group, as the norm of the concatenated gradients)."""

    grad_norm: float
    low_gate_grad_norm: float
    low_gate_tokens: int
    real_tokens: int

    @property
    def low_gate_grad_share(self) -> float:
        return self.low_gate_grad_norm / self.grad_norm if self.grad_norm > 0 else math.nan

    @property
    def low_gate_token_share(self) -> float:
        return self.low_gate_tokens / self.real_tokens if self.real_tokens > 0 else math.nan

    def as_scalars(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}/grad_norm": self.grad_norm,
            f"{prefix}/low_gate_grad_share": self.low_gate_grad_share,
            f"{prefix}/low_gate_token_share": self.low_gate_token_share,
        }


def combine(shares: list[GradientShare]) -> GradientShare:
    """One `GradientShare` for several modules: norms of the concatenated gradients, pooled token counts."""
    return GradientShare(
        grad_norm=math.sqrt(sum(share.grad_norm**2 for share in shares)),
        low_gate_grad_norm=math.sqrt(sum(share.low_gate_grad_norm**2 for share in shares)),
        low_gate_tokens=sum(share.low_gate_tokens for share in shares),
        real_tokens=sum(share.real_tokens for share in shares),
    )


def grouped_shares(shares: dict[str, GradientShare]) -> dict[str, GradientShare]:
    """`combine` over the groups ``all``, ``type_<kind>`` and ``layer_<ii>`` of the module names."""
    return {
        group: combine([shares[name] for name in members])
        for group, members in group_names(list(shares)).items()
    }


def _rng_state(device: torch.device) -> dict[str, Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


@contextlib.contextmanager
def _replayed_rng(state: dict[str, Tensor], device: torch.device) -> Iterator[None]:
    """Run the block from the saved RNG state, leaving the global RNG state as it was."""
    devices = [device] if "cuda" in state else []
    with torch.random.fork_rng(devices=devices):
        torch.set_rng_state(state["cpu"])
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], device)
        yield


def method_parameters(layer: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of a layer's method, without the token gate's."""
    return [
        parameter
        for name, parameter in layer.named_adapter_parameters()
        if not name.startswith("token_gate.") and parameter.requires_grad
    ]


def _squared_norm(gradients: tuple[Tensor | None, ...]) -> Tensor:
    """The float64 squared norm of the gradients together, on their device (no host synchronisation)."""
    squares = [gradient.double().pow(2).sum() for gradient in gradients if gradient is not None]
    return torch.stack(squares).sum() if squares else torch.zeros((), dtype=torch.float64)


class GradientMaskingProbe:
    """Measures every gated layer's `GradientShare` during one forward and backward."""

    def __init__(self, model: nn.Module, threshold: float = LOW, offload_inputs: bool | None = None) -> None:
        """
        Args:
            model: the model whose gated `AdapterLinear` layers to measure.
            threshold: ``tau``; tokens with ``g < tau`` are the low-gate tokens.
            offload_inputs: keep the layers' inputs in host memory until their backward; ``None``: when the
                model checkpoints activations (Hugging Face's ``is_activation_checkpointing``) and runs on an
                accelerator.
        """
        self.layers = dict(gated_layers(model))
        self.threshold = threshold
        if offload_inputs is None:
            offload_inputs = bool(getattr(model, "is_activation_checkpointing", False))
        self.offload_inputs = offload_inputs
        self._measured: dict[str, Tensor] = {}  # name: (4,) float64 on the device, read at `finish`
        self._inputs: dict[str, tuple[Tensor, dict[str, Tensor], tuple[bool, torch.dtype]]] = {}
        self._hooked: set[str] = set()
        self._token_mask: Tensor | None = None
        self._handles: list[RemovableHandle] = []

    def start(self, token_mask: Tensor | None = None) -> None:
        """Install the hooks for the next forward and backward.

        Args:
            token_mask: (B, T), nonzero on real tokens (``attention_mask``); ``None`` counts every token.
        """
        self.stop()
        self._inputs, self._hooked, self._token_mask = {}, set(), token_mask
        self._measured = {}
        for name, layer in self.layers.items():
            self._handles.append(layer.register_forward_pre_hook(self._keep_input(name)))
            self._handles.append(layer.register_forward_hook(self._watch_output(name)))

    def stop(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def finish(self) -> dict[str, GradientShare]:
        """Remove the hooks, drop what was kept, and return the shares measured during the backward."""
        self.stop()
        names = list(self._measured)
        values = torch.stack([self._measured[name].cpu() for name in names]).tolist() if names else []
        shares = {
            name: GradientShare(math.sqrt(total), math.sqrt(low), int(low_tokens), int(real_tokens))
            for name, (total, low, low_tokens, real_tokens) in zip(names, values, strict=True)
        }
        self._measured = {}
        self._inputs, self._hooked, self._token_mask = {}, set(), None
        return shares

    def _keep_input(self, name: str):
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            if name in self._inputs or name in self._hooked:  # a checkpoint's recomputation
                return
            x = args[0]
            device = x.device.type
            autocast = (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
            kept = x.detach()  # (B, T, d_in)
            if self.offload_inputs and kept.device.type != "cpu":
                kept = kept.to("cpu")  # checkpointing would have freed it: not on the accelerator
            self._inputs[name] = (kept, _rng_state(x.device), autocast)

        return hook

    def _watch_output(self, name: str):
        def measure(gradient: Tensor) -> None:
            self._measured[name] = self._measure(name, gradient.detach())

        def hook(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> None:
            if name not in self._hooked and output.requires_grad:
                self._hooked.add(name)
                output.register_hook(measure)

        return hook

    def _measure(self, name: str, upstream: Tensor) -> Tensor:
        """Recompute layer ``name`` alone from its kept input and split its gradient by gate; ``upstream``
        (B, T, d_out). Returns (4,) float64 on the device: ``||G||^2``, ``||G_low||^2``, low and real tokens."""
        layer = self.layers[name]
        x, rng, (autocast_enabled, autocast_dtype) = self._inputs.pop(name)
        x = x.to(upstream.device)  # (B, T, d_in), back from host memory when it was offloaded
        parameters = method_parameters(layer)
        real = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)  # (B, T)
        if self._token_mask is not None:
            mask = self._token_mask
            if mask.dim() == 2 and x.dim() == 3:  # micro-batches: the first one's leading rows and columns
                mask = mask[: x.shape[0], : x.shape[1]]
            real = mask.to(x.device).reshape(real.shape) != 0
        with (
            _replayed_rng(rng, x.device),
            torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_enabled),
            torch.enable_grad(),
        ):
            gate = layer.token_gate(x).detach().squeeze(-1)  # (B, T)
            low = (gate < self.threshold) & real  # (B, T)
            output = layer(x)  # (B, T, d_out)
            total = torch.autograd.grad(output, parameters, upstream, retain_graph=True, allow_unused=True)
            restricted = upstream * low.unsqueeze(-1).to(upstream.dtype)  # (B, T, d_out)
            low_part = torch.autograd.grad(output, parameters, restricted, allow_unused=True)
        counts = torch.stack([low.sum(), real.sum()]).to(torch.float64)  # (2,)
        return torch.cat([torch.stack([_squared_norm(total), _squared_norm(low_part)]).to(x.device), counts])
