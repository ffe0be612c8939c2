"""What the extra ``gatera-lab`` subcommands share: the entry point's error handling, options and output file.

A subcommand's ``main(argv)`` is ``run_command(name, parser, run, argv)``: it parses its options and runs; a
`GateraError` (bad option, file or checkpoint) is printed as one line, ``gatera-lab <name>: error: ...``, and
gives exit status 2; anything else is a bug and raises.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.io.atomic_write import write_text_atomic


def run_command(
    name: str,
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], object],
    argv: list[str] | None,
) -> int:
    """``run(parser.parse_args(argv))``; returns ``run``'s result if it is an int exit status, else 0, or 2
    after printing a `GateraError`. ``argv`` None: ``sys.argv[1:]``."""
    args = parser.parse_args(argv)
    try:
        status = run(args)
    except GateraError as error:
        print(f"gatera-lab {name}: error: {error}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) and not isinstance(status, bool) else 0


class _DeprecatedAlias(argparse.Action):
    """Stores like the option it stands for, with a note on stderr naming that option."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog}: note: {option_string} is deprecated; use --base-model", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_base_model_option(parser: argparse.ArgumentParser, alone: bool = False) -> None:
    """``--base-model`` (dest ``base_model``): the base model to load instead of the checkpoint's recorded one.

    Args:
        parser: the subcommand's parser.
        alone: the subcommand also runs without ``--ckpt``, on this base model alone; it then keeps
            ``--model``, the option's earlier name, as a deprecated alias.
    """
    help_text = "base model name or folder to load instead of the one recorded in the checkpoint"
    if alone:
        help_text += " (without --ckpt: this base model alone, no adapter)"
    parser.add_argument("--base-model", dest="base_model", default=None, help=help_text)
    if alone:
        parser.add_argument(
            "--model", dest="base_model", action=_DeprecatedAlias, help="deprecated name of --base-model"
        )


def write_output(option: str, path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically; a file that cannot be written is a `ConfigError` naming ``option``."""
    try:
        write_text_atomic(path, text)
    except OSError as error:
        raise ConfigError(f"option {option}: cannot write {str(path)!r} ({error})") from error
