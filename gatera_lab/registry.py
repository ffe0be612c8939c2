"""The method registry: short names (``lora``, ``hira_gate``, ...) for `AdapterMethod` subclasses.

A method registers itself with a decorator on its class::

    @register_method("lora", gated_name="lora_gate", description="W0 x + s B A x")
    class LoRA(AdapterMethod): ...

``gated_name`` registers the same class a second time with ``gate=True``: gating is a setting of every
method, never a second class. The registry finds the methods itself, on first use (`discover_methods`):

- built-in: every module of the ``gatera_lab.methods`` package (the ``methods/`` folder) is imported, so a
  new file there is registered with no edit anywhere else;
- plug-ins: every entry point of the group ``gatera_lab.methods`` of an installed distribution is loaded,
  e.g. in the plug-in's ``pyproject.toml``::

      [project.entry-points."gatera_lab.methods"]
      shift = "my_package.shift"

A method that is not registered at all is still used by its class path (``class_path: my_pkg.MyMethod``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from gatera_lab.errors import ConfigError, UnknownMethodError

if TYPE_CHECKING:
    from gatera_lab.adapters.adapter_method import AdapterMethod

MethodClass = TypeVar("MethodClass", bound=type)

BUILTIN_PACKAGE = "gatera_lab.methods"
ENTRY_POINT_GROUP = "gatera_lab.methods"


@dataclass(frozen=True)
class RegistryEntry:
    """One registered name: the class, the keyword arguments the name implies, and a one-line summary."""

    name: str
    method_class: type[AdapterMethod]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, RegistryEntry] = {}
_IMPORTED: set[str] = set()  # the built-in modules and entry points already imported
_DISCOVERED = False


def _same_class(a: type, b: type) -> bool:
    """True for one class, or for the same class defined again by re-importing its module."""
    return a is b or (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def register_method(
    name: str, *, gated_name: str | None = None, description: str = ""
) -> Any:  # a class decorator
    """Register an `AdapterMethod` subclass under ``name`` (and its gated version under ``gated_name``).

    Args:
        name: the short name of the ungated method.
        gated_name: if given, the same class with ``gate=True`` is registered under this name too.
        description: one line shown by ``gatera-lab methods``.

    Raises:
        ConfigError: a name is already registered by another class.
    """

    def decorator(method_class: MethodClass) -> MethodClass:
        for entry_name, defaults, text in (
            (name, {"gate": False}, description),
            (gated_name, {"gate": True}, f"{description}, with a per-token GateRA gate"),
        ):
            if entry_name is None:
                continue
            existing = _REGISTRY.get(entry_name)
            if existing is not None and not _same_class(existing.method_class, method_class):
                raise ConfigError(
                    f"method name {entry_name!r} of {method_class.__module__}.{method_class.__qualname__} is "
                    f"already registered by {existing.method_class.__module__}."
                    f"{existing.method_class.__qualname__}; choose another name"
                )
            _REGISTRY[entry_name] = RegistryEntry(entry_name, method_class, defaults, text)
        method_class.registry_name = name  # type: ignore[attr-defined]
        method_class.registry_gated_name = gated_name  # type: ignore[attr-defined]
        return method_class

    return decorator


def discover_methods() -> None:
    """Import every built-in method module and every plug-in entry point not imported yet.

    `registry_entries` calls it once; call it again after installing a plug-in in a running process.

    Raises:
        ConfigError: an entry point of the group ``gatera_lab.methods`` cannot be loaded (names it).
    """
    package = importlib.import_module(BUILTIN_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__, prefix=f"{BUILTIN_PACKAGE}."):
        if module.name not in _IMPORTED:
            importlib.import_module(module.name)
            _IMPORTED.add(module.name)
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry point {entry_point.name} = {entry_point.value}"
        if key in _IMPORTED:
            continue
        try:
            entry_point.load()  # importing the module runs its @register_method decorators
        except Exception as error:
            distribution = entry_point.dist.name if entry_point.dist is not None else "unknown"
            raise ConfigError(
                f"entry point {entry_point.name!r} = {entry_point.value!r} of group {ENTRY_POINT_GROUP!r} "
                f"(installed package {distribution!r}) cannot be loaded: {type(error).__name__}: {error}"
            ) from error
        _IMPORTED.add(key)


def registry_entries() -> dict[str, RegistryEntry]:
    """All registered names, built-in methods and plug-ins included, in registration order."""
    global _DISCOVERED
    if not _DISCOVERED:
        discover_methods()
        _DISCOVERED = True
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
