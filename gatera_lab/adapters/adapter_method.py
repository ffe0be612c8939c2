"""`AdapterMethod`: the contract a parameter-efficient fine-tuning method fulfils.

A method is a small strategy object. It holds the hyper-parameters shared by every method (``r``,
``alpha``, ``dropout``, ``target_modules``, the gate settings) and states, for one frozen linear layer
``y = W0 x + b``:

- `init_parameters`: the trainable tensors it adds (registered on the `AdapterLinear`);
- `delta`: its update ``DeltaW(x)`` for the (dropped-out) input ``x``, given the base output;
- optionally `delta_weight` (or `merged_weight`/`unmerged_weight`) so the ungated layer can be merged,
  and faster `forward_ungated`/`forward_gated` paths that must equal the plain formula.

`apply` injects the method into every matching ``nn.Linear`` of a model and freezes everything else.
Gating is a setting (``gate=True``), not a subclass: the same `TokenGate` multiplies any method's update,
``y = W0 x + b + g(x) * DeltaW(x)``, a user's subclass included.

Subclasses that add hyper-parameters store each ``__init__`` argument under its own name (``self.x = x``)
so `hparams` can record them in checkpoints and exports. Every option is compared when a checkpoint is
loaded into a method (`gatera_lab.export.checkpoint_metadata.check_checkpoint_matches`), except those listed
in `AdapterMethod.training_only_options`; a subclass whose option acts only on training or initialisation
adds it there.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.target_matching import find_target_linears, validate_target_modules
from gatera_lab.errors import ConfigError, MergeError

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class AdapterSummary:
    """What `AdapterMethod.apply` did to a model."""

    method: str
    adapted_modules: list[str]
    trainable_parameters: int
    total_parameters: int

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_parameters / max(self.total_parameters, 1)

    def __str__(self) -> str:
        return (
            f"{self.method}: {len(self.adapted_modules)} adapted modules, "
            f"{self.trainable_parameters:,} trainable of {self.total_parameters:,} parameters "
            f"({self.trainable_percent:.3f}%)"
        )


class AdapterMethod:
    """Base class of every adapter method; subclass it to try a new idea."""

    registry_name: ClassVar[str | None] = None
    registry_gated_name: ClassVar[str | None] = None
    exact_base_at_zero_gate: ClassVar[bool] = False
    """Capability: `forward_gated` returns ``base_layer(x)`` bit for bit for every token whose gate is 0.

    A method that declares it lets inference gate skipping (`gatera_lab.adapters.gate_skip`) zero the gates of
    the skipped tokens and run its normal path instead of gathering the kept tokens; the generic path
    ``base_out + g * delta`` only qualifies if ``0 * delta`` is exactly 0 (no inf or NaN).
    """
    delta_weight_uses_base: ClassVar[bool] = True
    """Whether ``delta_weight`` may depend on ``W0``: then `merged_weight` keeps the ``DeltaW`` it added until
    `unmerged_weight` subtracts it. ``False`` (LoRA) recomputes it instead and keeps nothing while merged."""
    training_only_options: ClassVar[frozenset[str]] = frozenset(
        {"dropout", "gate_bias", "gate_weight_init_std", "entropy_weight"}
    )
    """Options that do not change what a trained adapter computes, so a checkpoint may be loaded with others.

    ``dropout`` is the identity in eval mode and, in training, a regulariser like the learning rate: the
    trained tensors mean the same function whatever its value. ``gate_bias`` and ``gate_weight_init_std`` only
    set the initial gate tensors, which a checkpoint overwrites; ``entropy_weight`` only weighs a loss term.
    Every other option (``r``, ``alpha``, ``target_modules``, ``gate`` and any option a subclass adds) changes
    the adapter's forward function or its tensors, and a checkpoint loaded with another value is refused.
    """

    def __init__(
        self,
        r: int = 32,
        alpha: float = 64.0,
        dropout: float = 0.0,
        target_modules: str | Sequence[str] = DEFAULT_TARGET_MODULES,
        gate: bool = False,
        gate_bias: float = 0.0,
        gate_weight_init_std: float | None = None,
        entropy_weight: float = 0.0,
    ) -> None:
        """
        Args:
            r: rank of the low-rank factors ``B`` (d_out, r) and ``A`` (r, d_in).
            alpha: scaling numerator, ``s = alpha / r`` (methods without a scale ignore it).
            dropout: dropout probability on the adapter's input.
            target_modules: module names (matched as name suffixes) or one regex on full module names.
            gate: multiply the update by a per-token GateRA gate ``g = sigmoid(w . x + b)``.
            gate_bias: initial gate bias ``b``; every gate starts at ``sigmoid(gate_bias)``.
            gate_weight_init_std: standard deviation of the initial gate weight ``w``; None:
                ``1 / sqrt(d_in)`` (tokens start at different gates, so the entropy term acts from the first
                step); 0: zeros (every gate starts at ``sigmoid(gate_bias)``).
            entropy_weight: ``lambda``, the weight of the gate entropy regulariser in the loss.
        """
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ConfigError(f"option 'r' must be a positive integer, got r={r!r}")
        if not alpha > 0:
            raise ConfigError(f"option 'alpha' must be positive, got alpha={alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"option 'dropout' must lie in [0, 1), got dropout={dropout!r}")
        if entropy_weight < 0:
            raise ConfigError(f"option 'entropy_weight' must be >= 0, got entropy_weight={entropy_weight!r}")
        if entropy_weight > 0 and not gate:
            raise ConfigError(
                f"option 'entropy_weight'={entropy_weight!r} needs gate=True: an ungated method has no gates"
            )
        validate_target_modules(target_modules)
        self.r = r
        self.alpha = float(alpha)
        self.dropout = float(dropout)
        self.target_modules = target_modules if isinstance(target_modules, str) else list(target_modules)
        self.gate = bool(gate)
        self.gate_bias = float(gate_bias)
        self.gate_weight_init_std = None if gate_weight_init_std is None else float(gate_weight_init_std)
        self.entropy_weight = float(entropy_weight)

    # ------------------------------------------------------------------ what a method states
    def init_parameters(self, base_layer: nn.Linear) -> dict[str, nn.Parameter]:
        """The trainable tensors this method adds to ``base_layer`` (same device and dtype)."""
        raise NotImplementedError(f"{type(self).__name__} must implement init_parameters()")

    def delta(self, layer: AdapterLinear, x: Tensor, base_out: Tensor) -> Tensor:
        """The update ``DeltaW(x)``: (..., d_in) -> (..., d_out); ``base_out = W0 x + b`` of the undropped input."""
        raise NotImplementedError(f"{type(self).__name__} must implement delta()")

    def delta_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        """The dense ``DeltaW`` (d_out, d_in) with ``delta(x) = DeltaW x``, for merging. Optional."""
        raise MergeError(f"method {self.name!r} does not define delta_weight(), so it cannot be merged")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A subclass that redefines `delta` below a class's fast paths falls back to the plain formula.

        ``class ScaledLoRA(LoRA)`` overriding only ``delta`` would otherwise run LoRA's `forward_ungated`,
        which never calls ``delta``, and silently train plain LoRA. Likewise a subclass that redefines
        `delta_weight` below LoRA's ``delta_weight_uses_base = False`` is taken to depend on ``W0`` (its
        ``DeltaW`` is kept for unmerging) unless it declares otherwise itself.
        """
        super().__init_subclass__(**kwargs)
        delta_owner = _defining_class(cls, "delta")
        for name in ("forward_ungated", "forward_gated"):
            owner = _defining_class(cls, name)
            if owner is not AdapterMethod and not issubclass(owner, delta_owner):
                setattr(cls, name, getattr(AdapterMethod, name))
        # likewise a `delta_weight` redefined below a class that declared it independent of W0 may depend on it
        weight_owner = _defining_class(cls, "delta_weight")
        declared_by = _defining_class(cls, "delta_weight_uses_base")
        if weight_owner is not declared_by and issubclass(weight_owner, declared_by):
            cls.delta_weight_uses_base = True

    # ------------------------------------------------------------------ overridable fast paths
    def forward_ungated(self, layer: AdapterLinear, x: Tensor) -> Tensor:
        """``W0 x + b + DeltaW(dropout(x))``; override only with something equal and faster."""
        base_out = layer.base_layer(x)  # (..., d_out)
        return base_out + self.delta(layer, layer.dropout(x), base_out)

    def forward_gated(self, layer: AdapterLinear, x: Tensor, gate: Tensor) -> Tensor:
        """``W0 x + b + g * DeltaW(dropout(x))`` with ``gate`` of shape (..., 1)."""
        base_out = layer.base_layer(x)  # (..., d_out)
        return base_out + gate * self.delta(layer, layer.dropout(x), base_out)

    def merged_weight(self, layer: AdapterLinear, base_weight: Tensor) -> Tensor:
        """The single weight that computes ``W0 x + DeltaW x``; default ``W0 + DeltaW``.

        Unless the class declares ``delta_weight_uses_base = False``, the ``DeltaW`` added is kept in
        ``layer.merge_cache`` until `unmerged_weight` subtracts it: ``DeltaW`` may depend on ``W0``, and
        recomputing it from the merged weight would then give the wrong one.
        """
        delta = self.delta_weight(layer, base_weight)  # (d_out, d_in)
        if self.delta_weight_uses_base:
            layer.merge_cache["delta_weight"] = delta
        return base_weight + delta

    def unmerged_weight(self, layer: AdapterLinear, merged_weight: Tensor) -> Tensor:
        """``W0`` recovered from `merged_weight`: minus the ``DeltaW`` kept at merge time, or, for a class with
        ``delta_weight_uses_base = False`` (``DeltaW`` independent of ``W0``, as LoRA's), minus it recomputed."""
        kept = layer.merge_cache.pop("delta_weight", None)
        if kept is not None:
            return merged_weight - kept
        if self.delta_weight_uses_base:
            raise MergeError(
                f"method {self.name!r}: this layer was not merged by merged_weight() (no DeltaW was kept), and its "
                "delta_weight() may depend on W0, so W0 cannot be recovered from the merged weight"
            )
        return merged_weight - self.delta_weight(layer, merged_weight)

    # ------------------------------------------------------------------ machinery
    @property
    def name(self) -> str:
        """The registry name (``hira_gate`` for a gated HiRA), or the class name for unregistered methods.

        Only a class that was registered itself has a registry name: an unregistered subclass of ``LoRA``
        (which inherits the ``registry_name`` attribute) is named by its own class, e.g. ``ScaledLoRA`` or,
        gated, ``ScaledLoRA+gate``.
        """
        method_class = type(self)
        registered = vars(method_class).get("registry_name")
        if registered is not None:
            if not self.gate:
                return registered
            gated_name = vars(method_class).get("registry_gated_name")
            if gated_name is not None:
                return gated_name
        base = registered or method_class.__name__
        return f"{base}+gate" if self.gate else base

    @property
    def scaling(self) -> float:
        """``s = alpha / r``."""
        return self.alpha / self.r

    def hparams(self) -> dict[str, Any]:
        """Every ``__init__`` argument of this method, by name, for checkpoints and exports."""
        names: list[str] = []
        for cls in type(self).__mro__:
            if cls is object or "__init__" not in vars(cls):
                continue
            for parameter in inspect.signature(cls.__init__).parameters.values():
                if parameter.name != "self" and parameter.kind not in (
                    parameter.VAR_POSITIONAL,
                    parameter.VAR_KEYWORD,
                ):
                    names.append(parameter.name)
        return {name: getattr(self, name) for name in dict.fromkeys(names) if hasattr(self, name)}

    def class_path(self) -> str:
        return f"{type(self).__module__}.{type(self).__qualname__}"

    def apply(self, model: nn.Module) -> AdapterSummary:
        """Freeze ``model`` and replace every targeted ``nn.Linear`` by an `AdapterLinear` of this method."""
        if any(True for _ in adapter_layers(model)):
            raise ConfigError(f"{type(model).__name__} already has adapters; apply a method only once")
        targets = find_target_linears(model, self.target_modules)
        model.requires_grad_(False)
        for name, linear in targets.items():
            parent_name, _, child_name = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child_name, AdapterLinear(linear, self).train(linear.training))  # keep the mode
        trainable = sum(parameter.numel() for parameter in adapter_parameters(model))
        total = sum(parameter.numel() for parameter in model.parameters())
        return AdapterSummary(self.name, list(targets), trainable, total)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self.hparams().items())
        return f"{type(self).__name__}({args})"


def adapter_layers(model: nn.Module) -> Iterator[tuple[str, AdapterLinear]]:
    """Every `AdapterLinear` in ``model``, by full module name."""
    for name, module in model.named_modules():
        if isinstance(module, AdapterLinear):
            yield name, module


def named_adapter_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    """The trainable tensors of every adapter (method parameters and gates) by full name, found by module type."""
    for layer_name, layer in adapter_layers(model):
        for name, parameter in layer.named_adapter_parameters():
            yield f"{layer_name}.{name}", parameter


def adapter_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The trainable tensors of every adapter (method parameters and gates), found by module type."""
    for _, parameter in named_adapter_parameters(model):
        yield parameter


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The adapter tensors only, keyed by their full names in ``model.state_dict()``."""
    return {name: parameter.detach() for name, parameter in named_adapter_parameters(model)}


def set_adapters_enabled(model: nn.Module, enabled: bool) -> None:
    """Switch every adapter on or off (off: the model computes its frozen base)."""
    for _, layer in adapter_layers(model):
        layer.adapter_enabled = enabled


def _defining_class(cls: type, name: str) -> type:
    """The first class in ``cls``'s method resolution order whose own namespace defines ``name``."""
    return next(klass for klass in cls.__mro__ if name in vars(klass))
