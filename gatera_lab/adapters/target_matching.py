"""Which ``nn.Linear`` modules of a model an adapter is injected into.

``target_modules`` follows HF PEFT's convention, so an exported adapter config means the same thing there:
a list of names matches a module whose full name equals an entry or ends with ``"." + entry``; a single
string is a regular expression that must match the full module name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from torch import nn

from gatera_lab.errors import ConfigError

TargetModules = str | Sequence[str]


def validate_target_modules(target_modules: TargetModules) -> None:
    """Raise `ConfigError` for an empty list or a regular expression that does not compile."""
    if isinstance(target_modules, str):
        try:
            re.compile(target_modules)
        except re.error as error:
            raise ConfigError(
                f"target_modules={target_modules!r} is not a valid regular expression: {error}"
            ) from error
        return
    if len(target_modules) == 0 or not all(isinstance(name, str) and name for name in target_modules):
        raise ConfigError(
            f"target_modules={list(target_modules)!r} must be a non-empty list of module names or a regex"
        )


def matches_target(module_name: str, target_modules: TargetModules) -> bool:
    """Whether the module called ``module_name`` (e.g. ``model.layers.0.self_attn.q_proj``) is a target."""
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, module_name) is not None
    return any(module_name == name or module_name.endswith("." + name) for name in target_modules)


def find_target_linears(model: nn.Module, target_modules: TargetModules) -> dict[str, nn.Linear]:
    """The ``nn.Linear`` modules of ``model`` that ``target_modules`` selects, by full name.

    Raises:
        ConfigError: if nothing matches; the message lists the linear layer names the model has.
    """
    validate_target_modules(target_modules)
    linears = {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    selected = {name: module for name, module in linears.items() if matches_target(name, target_modules)}
    if not selected:
        short_names = sorted({name.rsplit(".", 1)[-1] for name in linears})
        raise ConfigError(
            f"target_modules={target_modules!r} matches no nn.Linear in {type(model).__name__}; "
            f"its linear layers are named: {', '.join(short_names) or '(none)'}"
        )
    return selected
