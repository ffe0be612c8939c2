"""A run's effective configuration: the CLI's own resolution of configs + overrides, and its identity hash.

The configuration is resolved by the real CLI's parser (``gatera-lab fit``'s, in-process, nothing is
built), so every default, config file and override is accounted for exactly as a run would see it. The
*identity* of a run is a hash of that configuration without what cannot change the trained adapter:
output folders, the progress bar and logging cadence, the gate diagnostics callbacks (they only read the
gates and log), how a step is computed (`COMPUTE_KEYS`: micro-batches, compiled layers), options added later at the default
that reproduces earlier runs (`LATER_OPTION_DEFAULTS`), and the test-only
settings (`TEST_KEYS`: the test subset and protocol), which are kept apart as the run's *test settings*. Two runs with equal identity train the same adapter, so
one record serves both (a learning-rate search run is also the final run of its seed at the chosen rate).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import warnings
from argparse import ArgumentError
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import LightningArgumentParser

from gatera_lab.cli import GateraCLI
from gatera_lab.errors import ConfigError
from gatera_lab.training.module import GateraModule

TEST_KEYS = (
    "data.init_args.test_limit",
    "model.eval_protocol",
    "model.generation_max_new_tokens",
    "model.generation_num_beams",
)
OUTPUT_KEYS = (
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "trainer.log_every_n_steps",
    "ckpt_path",
    "weights_only",
)
MEASUREMENT_CALLBACKS = "gatera_lab.diagnostics."  # gate diagnostics only read gates and log: not identity
RUNNER_KEYS = ("test_after_fit",)  # the runner launches fit and test itself
# how a step is computed, not what: micro-batches and compiled layers give the same loss and gradient (to
# float rounding)
COMPUTE_KEYS = ("model.micro_batch_tokens", "model.compile")
# options added after records were written, with the default that reproduces the earlier runs: left out of
# the identity at that default (so the committed records keep theirs), part of it otherwise
LATER_OPTION_DEFAULTS = {"model.gate_learning_rate": None}

Resolver = Callable[[Sequence[str]], dict[str, Any]]


def config_args(config_files: Sequence[str], overrides: Mapping[str, Any]) -> list[str]:
    """``--config`` for each file, then the overrides: ``{"model.learning_rate": 0.001}`` ->
    ``--model.learning_rate 0.001`` (strings as they are, everything else as JSON: ``true``, ``null``, ``[]``)."""
    args = [arg for file in config_files for arg in ("--config", str(file))]
    for key, value in overrides.items():
        args += [f"--{key}", value if isinstance(value, str) else json.dumps(value)]
    return args


def command_line(subcommand: str, args: Sequence[str]) -> str:
    """The shell command of a run: ``gatera-lab <subcommand> ARGS...``, quoted for a POSIX shell."""
    return shlex.join(["gatera-lab", subcommand, *args])


class _Parsed(Exception):  # noqa: N818 (a signal, not an error): carries the parsed configuration out
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("parsed")
        self.config = config


class _ResolvingCLI(GateraCLI):
    """`GateraCLI` that stops right after parsing ``fit``: it hands back the parsed configuration as the
    parser dumps it (every default, config file and override, exactly as ``--print_config`` shows it) and
    builds nothing."""

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # jsonargparse's deprecation notice of skip_none
            text = parser.dump(self.config, skip_none=False)
        raise _Parsed(yaml.safe_load(text)["fit"])


def build_cli(args: Sequence[str], cli_class: type[GateraCLI] = GateraCLI, **kwargs: Any) -> GateraCLI:
    """``cli_class`` (the ``gatera-lab`` CLI) over ``args`` in-process; ``kwargs`` go to LightningCLI."""
    with warnings.catch_warnings():  # args given while sys.argv has a subcommand of its own: on purpose
        warnings.filterwarnings("ignore", message=r"LightningCLI's args parameter is intended")
        return cli_class(
            GateraModule,
            L.LightningDataModule,
            subclass_mode_data=True,
            args=list(args),
            auto_configure_optimizers=False,
            **kwargs,
        )


def resolve_config(args: Sequence[str]) -> dict[str, Any]:
    """The fully resolved ``fit`` configuration of ``args`` (configs and overrides), parsed in-process."""
    try:
        build_cli(["fit", *args], _ResolvingCLI, parser_kwargs={"default_env": False, "exit_on_error": False})
    except _Parsed as parsed:
        return parsed.config
    except (ArgumentError, ValueError) as error:
        message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ConfigError(
            f"the run configuration does not resolve ({command_line('fit', args)}): {message}"
        ) from None
    raise ConfigError(f"the CLI parsed no configuration for {command_line('fit', args)}")


def caching_resolver(resolver: Resolver = resolve_config) -> Resolver:
    """``resolver`` with a per-process cache keyed by the argument list."""
    cache: dict[tuple[str, ...], dict[str, Any]] = {}

    def resolve(args: Sequence[str]) -> dict[str, Any]:
        key = tuple(args)
        if key not in cache:
            cache[key] = resolver(args)
        return json.loads(json.dumps(cache[key]))  # a copy the caller may change

    return resolve


def get_path(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``config["a"]["b"]`` for ``"a.b"``; ``default`` where a level is missing."""
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def _without(config: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = config
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def training_config(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """``resolved`` without output folders, runner options and test-only settings: what decides the adapter."""
    config = json.loads(json.dumps(resolved))
    for key in (*OUTPUT_KEYS, *RUNNER_KEYS, *TEST_KEYS, *COMPUTE_KEYS):
        _without(config, key)
    for key, default in LATER_OPTION_DEFAULTS.items():
        if get_path(config, key, default) == default:
            _without(config, key)
    callbacks = get_path(config, "trainer.callbacks")
    if isinstance(callbacks, list):
        config["trainer"]["callbacks"] = [
            callback
            for callback in callbacks
            if not str((callback or {}).get("class_path", "")).startswith(MEASUREMENT_CALLBACKS)
        ]
    return config


def test_settings(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """The test-only settings of ``resolved`` (`TEST_KEYS`, by their last name)."""
    return {key.rsplit(".", 1)[-1]: get_path(resolved, key) for key in TEST_KEYS}


def identity_hash(resolved: Mapping[str, Any], length: int = 10) -> str:
    """A stable hex hash of `training_config` (canonical JSON, sorted keys)."""
    text = json.dumps(training_config(resolved), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
