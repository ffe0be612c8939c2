"""`SweepSpec`: a sweep file (``configs/sweeps/*.yaml``), typed dataclasses that jsonargparse parses.

A sweep file is a YAML mapping of the `SweepSpec` fields::

    name: reproduction
    overlay: [configs/sweeps/reproduction_overlay.yaml]   # CLI configs applied after each method's config
    method_configs: configs              # <method>.yaml for every method named below
    records: results/records             # one JSON record per run
    runs: results/runs                   # logs and checkpoints (not committed)
    launcher: subprocess                 # or inprocess
    threads: null                        # torch threads of each run (null: torch's default)
    overrides: {}                        # more CLI options for every run: {dotted.option: value}
    zero_shot: lora                      # test this method's config untrained (adapter at init = the base)
    families:                            # one learning-rate grid per method family
      hira: {methods: [hira, hira_gate], learning_rates: [1.0e-3, 3.0e-3]}
    search_seed: 42                      # the seed of the learning-rate search runs (default: seeds[0])
    seeds: [42, 43]                      # the seeds of the final runs of every method
    entropy_sweep: {method: hira_gate, values: [0.0, 0.01, 0.1], seeds: [42]}
    variants:                            # methods again with settings changed, at their family's rate
      gate_bias_3: {methods: [hira_gate], overrides: {model.method.init_args.gate_bias: 3.0}, seeds: [42]}
    seconds_per_step: 5.0                # the time estimate of a fit: seconds_per_step x max_steps
    seconds_per_test: 300.0              # ... and of a test (`command.estimate_seconds`)
    gate_skip: {thresholds: [0.1, 0.25, 0.5], rows_per_task: 50, seeds: [42]}   # on gated finals
    seconds_per_gate_skip: 600.0         # ... and of a gate-skip measurement
    concurrent_fits: 1                   # at most one fit at a time over all workers (null: no limit)
    budget: "free text: the budget and why, shown on the results page"
    claims: configs/sweeps/claims.yaml   # the papers' claims the report checks (`claims_file`)

jsonargparse checks the types (unknown keys, positive learning rates, the launcher's values); `_check` adds
what types cannot say (registered methods with a config file, no repeats). Every error names the file and
the option.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from jsonargparse import ArgumentParser
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt

from gatera_lab.errors import ConfigError

VARIANT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class FamilySpec:
    """Methods that share one learning rate, chosen from ``learning_rates`` by their mean validation accuracy.

    Args:
        methods: the registered methods of the family (each with ``<method_configs>/<method>.yaml``).
        learning_rates: the grid, positive and without repeats.
        name: the family's key in ``families`` (set on load).
    """

    methods: tuple[str, ...]
    learning_rates: tuple[PositiveFloat, ...]
    name: str = ""


@dataclass(frozen=True)
class EntropySweepSpec:
    """Runs of ``method`` at each entropy weight (lambda) of ``values``, at its family's chosen rate."""

    method: str
    values: tuple[NonNegativeFloat, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class VariantSpec:
    """``methods`` trained and tested again with ``overrides`` (CLI options) at their family's chosen rate,
    one run per seed of ``seeds``; the report pairs each with the same method's final run of that seed.

    Args:
        methods: methods of the sweep's families.
        overrides: ``{dotted.option: value}``, applied after the sweep's own overrides; not empty.
        seeds: seeds of the variant's runs, each also a seed of the finals (to pair with).
        description: what the variant changes and why, shown on the results page.
        name: the variant's key in ``variants`` (set on load); part of its runs' names.
    """

    methods: tuple[str, ...]
    overrides: dict[str, Any]
    seeds: tuple[int, ...]
    description: str = ""
    name: str = ""


@dataclass(frozen=True)
class GateSkipSpec:
    """Gate skipping on the gated final runs of ``seeds``: accuracy and time at each threshold (in [0, 1]) on
    a seeded sample of ``rows_per_task`` test rows per task (`checkpoint_stages.gate_skip_stage`)."""

    thresholds: tuple[NonNegativeFloat, ...]
    rows_per_task: PositiveInt = 50
    sample_seed: int = 0
    seeds: tuple[int, ...] = (42,)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file; paths are as written (relative to the working directory)."""

    families: dict[str, FamilySpec]
    seeds: tuple[int, ...]
    name: str = ""
    overlay: tuple[str, ...] = ()
    method_configs: str = "configs"
    records: str = "results/records"
    runs: str = "results/runs"
    launcher: Literal["subprocess", "inprocess"] = "subprocess"
    threads: Optional[PositiveInt] = None  # noqa: UP045 (jsonargparse reads the annotation)
    overrides: dict[str, Any] = field(default_factory=dict)
    zero_shot: Optional[str] = None  # noqa: UP045
    search_seed: Optional[int] = None  # noqa: UP045
    entropy_sweep: Optional[EntropySweepSpec] = None  # noqa: UP045
    variants: dict[str, VariantSpec] = field(default_factory=dict)
    seconds_per_step: NonNegativeFloat = 5.0
    seconds_per_test: NonNegativeFloat = 300.0
    gate_skip: Optional[GateSkipSpec] = None  # noqa: UP045
    seconds_per_gate_skip: NonNegativeFloat = 600.0
    concurrent_fits: Optional[PositiveInt] = None  # noqa: UP045 (at most this many fits at once: memory)
    budget: str = ""
    claims: Optional[str] = None  # noqa: UP045
    path: Path = Path("sweep.yaml")

    def method_config(self, method: str) -> str:
        """The CLI config file of ``method``: ``<method_configs>/<method>.yaml``."""
        return os.path.join(self.method_configs, f"{method}.yaml")

    def family_of(self, method: str) -> FamilySpec | None:
        return next((family for family in self.family_list if method in family.methods), None)

    @property
    def family_list(self) -> tuple[FamilySpec, ...]:
        """The families in file order, each with its name."""
        return tuple(self.families.values())

    @property
    def variant_list(self) -> tuple[VariantSpec, ...]:
        """The variants in file order, each with its name."""
        return tuple(self.variants.values())

    @property
    def methods(self) -> tuple[str, ...]:
        """Every method of every family, in file order."""
        return tuple(method for family in self.family_list for method in family.methods)


def _fail(path: Path, key: str, message: str) -> ConfigError:
    return ConfigError(f"sweep file {str(path)!r}: option '{key}' {message}")


def _check(spec: SweepSpec) -> None:
    """What the types cannot say: registered methods with config files, overlay files, no repeats."""
    from gatera_lab.registry import available_methods

    path, registered = spec.path, available_methods()

    def check_method(key: str, method: str) -> None:
        config = Path(spec.method_configs) / f"{method}.yaml"
        if method not in registered:
            raise _fail(path, key, f"names {method!r}, not a registered method ({', '.join(registered)})")
        if not config.is_file():
            raise _fail(path, key, f"names {method!r}, but its config {str(config)!r} does not exist")

    if not spec.families or not spec.seeds:
        raise _fail(path, "families" if not spec.families else "seeds", "must not be empty")
    for key, file in [*(("overlay", file) for file in spec.overlay), ("claims", spec.claims)]:
        if file is not None and not Path(file).is_file():
            raise _fail(path, key, f"names {file!r}, which is not a file")
    if spec.zero_shot is not None:
        check_method("zero_shot", spec.zero_shot)
    seen: set[str] = set()
    for name, family in spec.families.items():
        key = f"families.{name}"
        if not family.methods or not family.learning_rates:
            raise _fail(path, key, "must name methods and learning_rates")
        for method in family.methods:
            check_method(f"{key}.methods", method)
            if method in seen:
                raise _fail(path, f"{key}.methods", f"repeats {method!r}: each method belongs to one family")
            seen.add(method)
        if len(set(family.learning_rates)) != len(family.learning_rates):
            raise _fail(path, f"{key}.learning_rates", f"repeats a value: {list(family.learning_rates)}")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise _fail(path, "seeds", f"repeats a seed: {list(spec.seeds)}")
    if spec.gate_skip is not None and not all(0 < value <= 1 for value in spec.gate_skip.thresholds):
        raise _fail(
            path, "gate_skip.thresholds", f"must lie in (0, 1], got {list(spec.gate_skip.thresholds)}"
        )
    sweep = spec.entropy_sweep
    if sweep is not None:
        check_method("entropy_sweep.method", sweep.method)
        if sweep.method not in seen:
            reason = "which belongs to no family (its learning rate is chosen there)"
            raise _fail(path, "entropy_sweep.method", f"names {sweep.method!r}, {reason}")
    for name, variant in spec.variants.items():
        _check_variant(spec, name, variant, seen, check_method)


def _check_variant(spec: SweepSpec, name: str, variant: VariantSpec, seen: set[str], check_method) -> None:
    key = f"variants.{name}"
    if not VARIANT_NAME.fullmatch(name):
        raise _fail(spec.path, key, "must be a name of letters, digits and _ (it becomes part of run names)")
    if not variant.methods or not variant.overrides or not variant.seeds:
        raise _fail(spec.path, key, "must name methods, overrides and seeds")
    for method in variant.methods:
        check_method(f"{key}.methods", method)
        if method not in seen:
            reason = "which belongs to no family (its learning rate is chosen there)"
            raise _fail(spec.path, f"{key}.methods", f"names {method!r}, {reason}")
    if len(set(variant.seeds)) != len(variant.seeds):
        raise _fail(spec.path, f"{key}.seeds", f"repeats a seed: {list(variant.seeds)}")
    unpaired = sorted(set(variant.seeds) - set(spec.seeds))
    if unpaired:
        reason = f"names seed(s) {unpaired} that no final run has (option 'seeds'): nothing to pair with"
        raise _fail(spec.path, f"{key}.seeds", reason)


def load_sweep(path: str | os.PathLike[str]) -> SweepSpec:
    """Read, type-check (jsonargparse) and check (`_check`) the sweep file at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"option --sweep: sweep file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"sweep file {str(path)!r} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    parser = ArgumentParser(exit_on_error=False, default_env=False)
    parser.add_class_arguments(SweepSpec, skip={"path"}, fail_untyped=True)
    try:
        spec = parser.instantiate(parser.parse_object(data)).as_dict()
    except Exception as error:  # jsonargparse's ArgumentError: names the key
        text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise ConfigError(f"sweep file {str(path)!r}: {text}") from None
    families = {name: dataclasses.replace(family, name=name) for name, family in spec["families"].items()}
    variants = {name: dataclasses.replace(variant, name=name) for name, variant in spec["variants"].items()}
    spec = SweepSpec(**{**spec, "families": families, "variants": variants, "path": path})
    spec = dataclasses.replace(
        spec,
        name=spec.name or path.stem,
        seeds=tuple(spec.seeds),
        overlay=tuple(spec.overlay),
        search_seed=spec.seeds[0] if spec.search_seed is None else spec.search_seed,
        budget=spec.budget.strip(),
    )
    _check(spec)
    return spec
