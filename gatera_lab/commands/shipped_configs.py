"""The configurations shipped with the package, addressable by name on the command line.

``configs/*.yaml`` installs as the package data of ``gatera_lab.configs``, so an installed ``gatera-lab``
finds them without the repository: ``gatera-lab fit --config hira_gate --config quick`` (or
``hira_gate.yaml``) runs the shipped ``hira_gate.yaml`` with the ``quick.yaml`` overlay. Contract of
`resolve_config_arguments`, for each ``--config``/``-c`` value:

- an existing file is kept as given (a real path always wins over a shipped name);
- else a bare name (no folder part) ``NAME``, ``NAME.yaml`` or ``NAME.yml`` of a shipped config becomes that
  config's installed path;
- else a bare name that looks like a config file name (``[A-Za-z0-9_.-]+``) is a `ConfigError` listing the
  shipped names;
- anything else (a path in a folder, an inline YAML string) is left to jsonargparse.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

from gatera_lab.commands.config_file_check import CONFIG_FLAGS
from gatera_lab.errors import ConfigError

CONFIG_PACKAGE = "gatera_lab.configs"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SUFFIXES = (".yaml", ".yml")


def shipped_configs() -> dict[str, Path]:
    """Every shipped config (``gatera_lab/configs/*.yaml``, sweeps excluded) by name without ``.yaml``, sorted.

    The package installs as a folder (wheel or editable install), so each entry is a real file path.
    """
    entries = [entry for entry in files(CONFIG_PACKAGE).iterdir() if entry.is_file()]
    return {
        entry.name.removesuffix(".yaml"): Path(str(entry))
        for entry in sorted(entries, key=lambda item: item.name)
        if entry.name.endswith(".yaml")
    }


def resolve_config_value(value: str) -> str:
    """``value`` of one ``--config`` option, with a shipped config's name replaced by its path (see module)."""
    if Path(value).is_file() or not _NAME.fullmatch(value) or value in (".", ".."):
        return value
    configs = shipped_configs()
    name = value
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    if name in configs:
        return str(configs[name])
    raise ConfigError(
        f"--config '{value}' is neither a file nor a shipped config; shipped configs: {', '.join(configs)}"
    )


def resolve_config_arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` with every ``--config NAME``, ``--config=NAME`` and ``-c NAME`` resolved by `resolve_config_value`."""
    resolved = list(argv)
    for index, argument in enumerate(resolved):
        if argument in CONFIG_FLAGS and index + 1 < len(resolved):
            resolved[index + 1] = resolve_config_value(resolved[index + 1])
        elif argument.startswith("--config="):
            resolved[index] = "--config=" + resolve_config_value(argument.removeprefix("--config="))
    return resolved


def list_configs(argv: list[str]) -> int:
    """``gatera-lab configs``: print each shipped config's name and installed path, one a line."""
    if argv[:1] in (["-h"], ["--help"]):
        print("usage: gatera-lab configs\n\nList the shipped configs; `--config NAME` runs one by name.")
        return 0
    if argv:
        raise ConfigError(f"`gatera-lab configs` takes no arguments, got {' '.join(argv)}")
    configs = shipped_configs()
    width = max(len(name) for name in configs)
    for name, path in configs.items():
        print(f"{name:<{width}}  {path}")
    return 0
