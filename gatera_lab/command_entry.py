"""What the extra ``gatera-lab`` subcommands share: the entry point's error handling and the output file.

A subcommand's ``main(argv)`` parses its options and runs; a `GateraError` (bad option, file or checkpoint)
is printed as ``gatera-lab <name>: error: ...`` and gives exit status 2, anything else is a bug and raises.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from gatera_lab.atomic_write import write_text_atomic
from gatera_lab.errors import ConfigError, GateraError


def run_command(
    name: str, parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], object], argv: list[str]
) -> int:
    """``run(parser.parse_args(argv))``; returns 0, or 2 after printing a `GateraError`."""
    args = parser.parse_args(argv)
    try:
        run(args)
    except GateraError as error:
        print(f"gatera-lab {name}: error: {error}", file=sys.stderr)
        return 2
    return 0


def write_output(option: str, path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically; a file that cannot be written is a `ConfigError` naming ``option``."""
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise ConfigError(f"option {option}: cannot write {str(path)!r} ({error})") from error
