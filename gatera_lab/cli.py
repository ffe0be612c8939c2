"""The ``gatera-lab`` command line.

``gatera-lab fit|validate|test --config CONFIG.yaml`` runs LightningCLI on `GateraModule` and any
LightningDataModule (``data: class_path: ...``); ``--print_config`` shows the full configuration, and the
configuration is saved beside every run's logs. Lightning's ``predict`` is not offered (the module has no
``predict_step``): ``gatera-lab generate`` generates text. ``gatera-lab``, ``-h`` and ``--help`` list every
subcommand (`print_help`). Extra subcommands:

- ``gatera-lab methods``: the registered adapter methods, one line each;
- ``gatera-lab configs``: the shipped configs; ``--config NAME`` runs one by name
  (`gatera_lab.commands.shipped_configs`);
- ``gatera-lab export``: write a trained adapter in the Hugging Face PEFT format (or the project's gated format);
- ``gatera-lab gates``: render a checkpoint's gate values for a prompt as a heatmap;
- ``gatera-lab sweep`` / ``report``: the study harness (`gatera_lab.experiments`);
- ``gatera-lab generate``: generate text from a trained adapter checkpoint or a base model;
- ``gatera-lab eval``: lm-evaluation-harness tasks on a trained adapter checkpoint or a base model;
- ``gatera-lab compare``: two tested runs row by row (their ``test_rows.jsonl``): interval, McNemar, verdict.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from gatera_lab.commands.config_file_check import check_config_files
from gatera_lab.commands.console import RunSummary, quiet_known_warnings
from gatera_lab.commands.shipped_configs import list_configs, resolve_config_arguments
from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.io.checkpoint_file import load_checkpoint_file
from gatera_lab.io.durable_checkpoint_io import use_durable_checkpoints
from gatera_lab.registry import registry_entries
from gatera_lab.training.host_memory import bound_library_caches
from gatera_lab.training.module import GateraModule

LIGHTNING_CHECKPOINT_NAMES = ("last", "best", "hpc")


class GateraCLI(LightningCLI):
    """LightningCLI with the tokenizer of the data linked to the model's ``model`` option."""

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """LightningCLI's subcommands without ``predict`` (`GateraModule` has no ``predict_step``)."""
        return {name: keys for name, keys in LightningCLI.subcommands().items() if name != "predict"}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("model.model", "data.init_args.tokenizer")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="fit only: then run `test` on the trained adapter and print the per-task accuracy table",
        )

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """As LightningCLI's, with checkpoints written atomically and fsynced (`DurableCheckpointIO`) and a
        run header and closing line on the console (`gatera_lab.commands.console.RunSummary`)."""
        trainer = super().instantiate_trainer(**kwargs)
        use_durable_checkpoints(trainer)
        trainer.callbacks.append(RunSummary())
        return trainer

    def after_fit(self) -> None:
        if self.config[self.subcommand].get("test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule)

    def instantiate_classes(self) -> None:
        """As LightningCLI's, but a bad value found while building the objects is a `ConfigError`, not a traceback."""
        try:
            super().instantiate_classes()
        except ValueError as error:
            cause = _gatera_cause(error)  # jsonargparse wraps what an __init__ raised in a Union error
            if cause is error:
                raise
            if cause is not None:
                raise cause from None
            raise ConfigError(f"the configuration could not be instantiated: {error}") from error


def _gatera_cause(error: BaseException | None) -> GateraError | None:
    """The first `GateraError` among ``error`` and its causes, else None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, GateraError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def list_methods(argv: list[str]) -> int:
    """Print every registered method with its class and a one-line description."""
    entries = registry_entries()
    width = max(len(name) for name in entries)
    for name, entry in entries.items():
        print(
            f"{name:<{width}}  {entry.method_class.__module__}.{entry.method_class.__qualname__}  {entry.description}"
        )
    return 0


def _lazy(module_path: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        return importlib.import_module(module_path).main(argv)

    return run


EXTRA_COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "methods": list_methods,
    "configs": list_configs,
    "export": _lazy("gatera_lab.commands.export_command"),
    "gates": _lazy("gatera_lab.commands.gates_command"),
    "sweep": _lazy("gatera_lab.experiments.command"),
    "report": _lazy("gatera_lab.experiments.report_command"),
    "generate": _lazy("gatera_lab.commands.generate_command"),
    "eval": _lazy("gatera_lab.commands.eval_command"),
    "compare": _lazy("gatera_lab.commands.compare_command"),
}

SUBCOMMAND_HELP: dict[str, str] = {
    "fit": "train an adapter (Lightning's Trainer.fit; --config CONFIG.yaml, --print_config)",
    "validate": "validate an adapter on the validation set (Lightning's Trainer.validate)",
    "test": "test an adapter: per-task accuracy (Lightning's Trainer.test)",
    "methods": "list the registered adapter methods",
    "configs": "list the shipped configs (fit --config NAME runs one by name)",
    "export": "write a trained adapter in the Hugging Face PEFT format (or the gated format)",
    "gates": "render a gated checkpoint's gate values for a prompt as a heatmap PNG",
    "sweep": "run the study harness: train and test the methods of a sweep file",
    "report": "rebuild the results page from a sweep's records",
    "generate": "generate text from a trained adapter checkpoint (or a base model)",
    "eval": "run lm-evaluation-harness tasks on a trained adapter checkpoint (or a base model)",
    "compare": "compare two tested runs row by row: difference, interval, McNemar, verdict",
}
HELP_FLAGS = ("-h", "--help")


def print_help() -> None:
    """Every subcommand with its one-line description (LightningCLI's and the extra ones)."""
    names = [*GateraCLI.subcommands(), *EXTRA_COMMANDS]
    width = max(len(name) for name in names)
    print("usage: gatera-lab SUBCOMMAND [OPTIONS]\n\nsubcommands:")
    for name in names:
        print(f"  {name:<{width}}  {SUBCOMMAND_HELP.get(name, '')}".rstrip())
    print("\nRun `gatera-lab SUBCOMMAND --help` for the options of one subcommand.")


def check_checkpoint_argument(argv: list[str]) -> None:
    """A ``--ckpt_path`` file that is missing or not a readable checkpoint is a `ConfigError` naming it.

    Lightning's own names (``last``, ``best``, ``hpc``, ``registry...``) are left to Lightning.
    """
    for index, arg in enumerate(argv):
        if arg == "--ckpt_path" and index + 1 < len(argv):
            path = argv[index + 1]
        elif arg.startswith("--ckpt_path="):
            path = arg.split("=", 1)[1]
        else:
            continue
        if path in LIGHTNING_CHECKPOINT_NAMES or path.startswith("registry") or path in ("null", ""):
            continue
        load_checkpoint_file(path, label=f"option --ckpt_path: {path!r}")


def run_lightning_cli(args: list[str] | None) -> GateraCLI:
    return GateraCLI(
        GateraModule,
        L.LightningDataModule,
        subclass_mode_data=True,
        args=args,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        parser_kwargs={"default_env": False},
    )


def main(args: list[str] | None = None) -> int:
    """Entry point of ``gatera-lab``; ``args`` defaults to ``sys.argv[1:]`` (so tests can call it in-process)."""
    argv = sys.argv[1:] if args is None else list(args)
    bound_library_caches()
    quiet_known_warnings()
    try:
        if not argv or argv[0] in HELP_FLAGS:
            print_help()
            return 0
        if argv[0] == "predict":
            raise ConfigError(
                "subcommand 'predict' is not offered (GateraModule has no predict_step); "
                "use `gatera-lab generate --ckpt CKPT --prompt TEXT` to generate text"
            )
        if argv[0] in EXTRA_COMMANDS:
            return EXTRA_COMMANDS[argv[0]](argv[1:])
        argv = resolve_config_arguments(argv)  # --config hira_gate: the shipped config of that name
        check_config_files(argv)  # a broken YAML file is named, not a usage text
        check_checkpoint_argument(argv)  # LightningCLI reads it while it parses: name a bad file first
        if args is None:
            sys.argv[1:] = argv  # LightningCLI reads sys.argv itself (and warns when given both)
        run_lightning_cli(None if args is None else argv)
    except GateraError as error:
        print(f"gatera-lab: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
