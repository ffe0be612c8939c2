"""Read the ``--config`` files of a command line before LightningCLI does, so a broken one is named.

jsonargparse reports a YAML syntax error without the file's name (``Problems parsing config: ... in
"<unicode string>", line 2``) after a long usage text; with several ``--config`` files the user cannot
tell which is broken. Here a file that is not UTF-8, not YAML, or not a mapping of options is a
`ConfigError` naming the file and the line. Values that are not existing files (jsonargparse also takes a
YAML string) are left to jsonargparse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from gatera_lab.errors import ConfigError

CONFIG_FLAGS = ("--config", "-c")


def config_file_arguments(argv: Sequence[str]) -> Iterator[Path]:
    """The existing files named by ``--config PATH``, ``--config=PATH`` or ``-c PATH`` in ``argv``."""
    for index, argument in enumerate(argv):
        if argument in CONFIG_FLAGS and index + 1 < len(argv):
            value = argv[index + 1]
        elif argument.startswith("--config="):
            value = argument.removeprefix("--config=")
        else:
            continue
        if Path(value).is_file():
            yield Path(value)


def check_config_file(path: Path) -> None:
    """Raise a `ConfigError` naming ``path`` unless it holds a YAML mapping (or nothing)."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"config file '{path}' is not UTF-8 text (byte offset {error.start}: {error.reason})"
        ) from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"config file '{path}' is not valid YAML: {problem}{where}") from error
    if content is not None and not isinstance(content, dict):
        raise ConfigError(
            f"config file '{path}' must hold a mapping of options (trainer:, model:, data:, ...), "
            f"got a {type(content).__name__}"
        )


def check_config_files(argv: Sequence[str]) -> None:
    """`check_config_file` on every ``--config`` file of ``argv``."""
    for path in config_file_arguments(argv):
        check_config_file(path)
