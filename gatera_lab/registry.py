"""The method registry: short names (``lora``, ``hira_gate``, ...) for `AdapterMethod` subclasses.

A method registers itself with a decorator on its class::

    @register_method("lora", gated_name="lora_gate", description="W0 x + s B A x")
    class LoRA(AdapterMethod): ...

``gated_name`` registers the same class a second time with ``gate=True``: gating is a setting of every
method, never a second class. The built-in methods live in the top-level ``methods`` package, which is
imported on first use of the registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gatera_lab.errors import UnknownMethodError

if TYPE_CHECKING:
    from gatera_lab.adapter_method import AdapterMethod

MethodClass = TypeVar("MethodClass", bound=type)


@dataclass(frozen=True)
class RegistryEntry:
    """One registered name: the class, the keyword arguments the name implies, and a one-line summary."""

    name: str
    method_class: type[AdapterMethod]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, RegistryEntry] = {}
_BUILTINS_LOADED = False


def register_method(
    name: str, *, gated_name: str | None = None, description: str = ""
) -> Any:  # a class decorator
    """Register an `AdapterMethod` subclass under ``name`` (and its gated version under ``gated_name``).

    Args:
        name: the short name of the ungated method.
        gated_name: if given, the same class with ``gate=True`` is registered under this name too.
        description: one line shown by ``gatera-lab methods``.
    """

    def decorator(method_class: MethodClass) -> MethodClass:
        for entry_name, defaults, text in (
            (name, {"gate": False}, description),
            (gated_name, {"gate": True}, f"{description}, with a per-token GateRA gate"),
        ):
            if entry_name is None:
                continue
            existing = _REGISTRY.get(entry_name)
            if existing is not None and existing.method_class is not method_class:
                raise ValueError(
                    f"method name {entry_name!r} is already registered by {existing.method_class.__qualname__}"
                )
            _REGISTRY[entry_name] = RegistryEntry(entry_name, method_class, defaults, text)
        method_class.registry_name = name  # type: ignore[attr-defined]
        method_class.registry_gated_name = gated_name  # type: ignore[attr-defined]
        return method_class

    return decorator


def _load_builtin_methods() -> None:
    global _BUILTINS_LOADED
    if not _BUILTINS_LOADED:
        importlib.import_module("gatera_lab.methods")
        _BUILTINS_LOADED = True


def registry_entries() -> dict[str, RegistryEntry]:
    """All registered names, built-in methods included, in registration order."""
    _load_builtin_methods()
    return dict(_REGISTRY)


def available_methods() -> list[str]:
    """The registered method names."""
    return list(registry_entries())


def get_entry(name: str) -> RegistryEntry:
    """The registry entry for ``name``; raises `UnknownMethodError` listing the known names."""
    entries = registry_entries()
    if name not in entries:
        raise UnknownMethodError(
            f"unknown method {name!r}; registered methods: {', '.join(entries)}. "
            "A method of your own is used by its class path, e.g. `class_path: my_pkg.MyMethod`."
        )
    return entries[name]


def build_method(name: str, **kwargs: Any) -> AdapterMethod:
    """Instantiate the method registered as ``name``; ``kwargs`` override its hyper-parameters."""
    entry = get_entry(name)
    return entry.method_class(**{**entry.defaults, **kwargs})
