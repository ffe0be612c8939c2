"""Built-in adapter methods, one file each; the registry imports every module here on first use.

No method is listed here: a new file in this folder is found by `gatera_lab.registry.discover_methods`.
The short class paths of older configurations (``gatera_lab.methods.LoRA``) still resolve, by class name
through the registry.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """A registered method class by its class name, e.g. ``gatera_lab.methods.HiRA``."""
    if name.startswith("__"):
        raise AttributeError(name)
    from gatera_lab.registry import registry_entries

    for entry in registry_entries().values():
        if entry.method_class.__name__ == name and entry.method_class.__module__.startswith(__name__ + "."):
            return entry.method_class
    raise AttributeError(f"module {__name__!r} has no method class {name!r}")
