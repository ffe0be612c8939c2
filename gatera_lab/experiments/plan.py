"""The runs of a sweep, in the order they are run, with what each still needs given the records.

Phases (a run may belong to several: equal identity means the same trained adapter):

- ``zero_shot``: the ``zero_shot`` method's config tested untrained (its adapter starts as the identity, so
  this is the base model), same test subset as every other run;
- ``lr_search``: every method of a family at every learning rate of its grid, search seed, no test;
- ``final``: every method at its family's chosen rate, every seed of ``seeds``, tested; waits until the
  family's search is recorded (`choose_learning_rate`); the search seed's run is the search run itself;
- ``entropy``: the entropy-sweep method at each lambda, at its family's chosen rate, tested;
- ``variant``: each variant's methods with its overrides, at their family's chosen rate, every seed of the
  variant, tested (``run.variant`` names it; ``--only <variant name>`` selects its runs).

Runs are listed family by family (search, then finals) so a family's finals come right after its search.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from gatera_lab.experiments.lr_selection import GridPoint, LearningRateChoice, choose_learning_rate
from gatera_lab.experiments.run_config import (
    Resolver,
    caching_resolver,
    config_args,
    get_path,
    identity_hash,
    test_settings,
)
from gatera_lab.experiments.sweep_file import SweepSpec

SEED_KEY = "seed_everything"
LR_KEY = "model.learning_rate"
ENTROPY_KEY = "model.method.init_args.entropy_weight"


@dataclass
class PlannedRun:
    """One run of the sweep: its CLI arguments (configs + overrides), resolved configuration and identity."""

    name: str
    identity: str
    kind: str  # "train" or "zero_shot" (test only)
    method: str
    family: str | None
    phases: list[str]
    seed: Any
    learning_rate: float | None
    entropy_weight: float | None
    needs_test: bool
    args: tuple[str, ...]
    resolved: dict[str, Any]
    learning_rate_choice: dict[str, Any] | None = None
    gate_skip: dict[str, Any] | None = None  # the sweep's gate-skip settings, for the gated finals it names
    variant: str | None = None  # the sweep variant this run belongs to (phase ``variant``)

    @property
    def test_settings(self) -> dict[str, Any]:
        return test_settings(self.resolved)

    def tags(self) -> set[str]:
        """What ``--only`` can select this run by: name, method, family and phases."""
        extra = [name for name in (self.family, self.variant) if name]
        return {self.name, self.method, *(self.phases), *extra}


@dataclass(frozen=True)
class WaitingGroup:
    """Runs that cannot be named yet: their learning rate is not chosen."""

    phase: str
    family: str
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    entropy_weights: tuple[float, ...] = ()
    reason: str = ""
    variant: str = ""

    def tags(self) -> set[str]:
        """What ``--only`` can select this group by: family, phase, methods and variant."""
        return {self.family, self.phase, *self.methods, *([self.variant] if self.variant else [])}

    def describe(self) -> str:
        lambdas = ", ".join(f"{value:g}" for value in self.entropy_weights)
        seeds = ", ".join(str(seed) for seed in self.seeds)
        at = f" at lambda {lambdas}" if lambdas else ""
        at += f" ({self.variant})" if self.variant else ""
        return f"{self.phase} runs of {', '.join(self.methods)}{at} (seeds {seeds}): {self.reason}"


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    waiting: list[WaitingGroup] = field(default_factory=list)
    choices: dict[str, LearningRateChoice] = field(default_factory=dict)

    def first_training_run(self) -> PlannedRun | None:
        """The first run that trains: its resolved config stands for the sweep's shared budget and test set."""
        return next((run for run in self.runs if run.kind == "train"), None)


def test_matches(record: dict[str, Any] | None, settings: dict[str, Any]) -> bool:
    """Whether ``record`` has a test made with exactly ``settings``."""
    test = (record or {}).get("test")
    return bool(test) and test.get("settings") == settings


def run_status(run: PlannedRun, record: dict[str, Any] | None) -> str:
    """What ``run`` needs next given its ``record``.

    ``pending`` (nothing recorded), ``needs_test`` (trained; test missing or made with other settings),
    ``needs_gates`` (a gated final or entropy run whose gate statistics predate the per-row ones),
    ``needs_gate_skip`` (``run.gate_skip`` asks for a measurement the record lacks), else ``done``.
    """
    if record is None:
        return "pending"
    if run.needs_test and not test_matches(record, run.test_settings):
        return "needs_test" if run.kind == "train" else "pending"
    gates = record.get("gates")
    if {"final", "entropy"} & set(run.phases) and isinstance(gates, dict) and not gates.get("per_row"):
        return "needs_gates"
    if run.gate_skip and (record.get("gate_skip") or {}).get("settings") != run.gate_skip:
        return "needs_gate_skip"
    return "done"


def run_name(
    kind: str, method: str, resolved: dict[str, Any], identity: str, variant: str | None = None
) -> str:
    """A readable, stable name: ``hira_gate_lr0.001_ent0.01_seed42-<hash>``, ``zero_shot_lora-<hash>``;
    a variant's run has the variant's name before the seed (``..._ent0.01_gate_bias_3_seed42-<hash>``)."""
    if kind == "zero_shot":
        return f"zero_shot_{method}-{identity[:8]}"
    parts = [method, f"lr{float(get_path(resolved, LR_KEY)):g}"]
    if get_path(resolved, "model.method.init_args.gate", method.endswith("_gate")):
        parts.append(f"ent{float(get_path(resolved, ENTROPY_KEY, 0.0)):g}")
    parts += [variant] if variant else []
    parts.append(f"seed{resolved.get(SEED_KEY)}")
    return "_".join(parts) + f"-{identity[:8]}"


def _grid_point(record: dict[str, Any]) -> GridPoint:
    validation = record.get("validation") or {}
    accuracy, loss = (validation.get("accuracy") or {}).get("avg"), validation.get("loss")
    return GridPoint(
        math.nan if accuracy is None else float(accuracy), math.nan if loss is None else float(loss)
    )


class _PlanBuilder:
    def __init__(self, spec: SweepSpec, records: dict[str, dict[str, Any]], resolver: Resolver) -> None:
        self.spec, self.records, self.resolver = spec, records, resolver
        self.plan = Plan()
        self._by_identity: dict[str, PlannedRun] = {}

    def add(
        self,
        method: str,
        phase: str,
        overrides: dict[str, Any],
        needs_test: bool,
        kind: str = "train",
        choice: LearningRateChoice | None = None,
        variant: str | None = None,
    ) -> PlannedRun:
        files = [self.spec.method_config(method), *self.spec.overlay]
        args = tuple(config_args(files, {**self.spec.overrides, **overrides}))
        resolved = self.resolver(args)
        identity = identity_hash(resolved if kind == "train" else {**resolved, "runner_kind": kind})
        run = self._by_identity.get(identity)
        if run is None:
            gated = bool(get_path(resolved, "model.method.init_args.gate", method.endswith("_gate")))
            family = self.spec.family_of(method)
            run = PlannedRun(
                name=run_name(kind, method, resolved, identity, variant),
                identity=identity,
                kind=kind,
                method=method,
                family=family.name if family else None,
                phases=[],
                seed=resolved.get(SEED_KEY),
                learning_rate=float(get_path(resolved, LR_KEY)) if kind == "train" else None,
                entropy_weight=float(get_path(resolved, ENTROPY_KEY, 0.0)) if gated else None,
                needs_test=False,
                args=args,
                resolved=resolved,
            )
            self._by_identity[identity] = run
            self.plan.runs.append(run)
        if phase not in run.phases:
            run.phases.append(phase)
        run.needs_test = run.needs_test or needs_test
        if choice is not None:
            run.learning_rate_choice = choice.as_record()
        run.variant = run.variant or variant  # a variant equal to an existing run is that run
        return run

    def family(self, family) -> None:
        spec = self.spec
        grid: dict[float, dict[str, GridPoint]] = {}
        for rate in family.learning_rates:
            for method in family.methods:
                run = self.add(
                    method, "lr_search", {SEED_KEY: spec.search_seed, LR_KEY: rate}, needs_test=False
                )
                if run.name in self.records:
                    grid.setdefault(rate, {})[method] = _grid_point(self.records[run.name])
        total, recorded = len(family.learning_rates) * len(family.methods), sum(map(len, grid.values()))
        if recorded < total:
            reason = f"({recorded} of {total} search runs recorded)"
            reason = f"waits for the learning-rate search of family {family.name!r} {reason}"
            self.plan.waiting.append(
                WaitingGroup("final", family.name, family.methods, spec.seeds, reason=reason)
            )
            return
        choice = choose_learning_rate(family.name, grid)
        self.plan.choices[family.name] = choice
        for method in family.methods:
            for seed in spec.seeds:
                overrides = {SEED_KEY: seed, LR_KEY: choice.learning_rate}
                run = self.add(method, "final", overrides, needs_test=True, choice=choice)
                skip = spec.gate_skip
                if skip is not None and run.entropy_weight is not None and seed in skip.seeds:
                    run.gate_skip = json.loads(json.dumps(dataclasses.asdict(skip)))  # as a record keeps it

    def entropy(self) -> None:
        sweep = self.spec.entropy_sweep
        family = self.spec.family_of(sweep.method)
        choice = self.plan.choices.get(family.name)
        if choice is None:
            reason = f"waits for the learning-rate search of family {family.name!r}"
            group = WaitingGroup("entropy", family.name, (sweep.method,), sweep.seeds, sweep.values, reason)
            self.plan.waiting.append(group)
            return
        for value in sweep.values:
            for seed in sweep.seeds:
                overrides = {SEED_KEY: seed, LR_KEY: choice.learning_rate, ENTROPY_KEY: value}
                self.add(sweep.method, "entropy", overrides, needs_test=True, choice=choice)

    def variants(self) -> None:
        for variant in self.spec.variant_list:
            for method in variant.methods:
                family = self.spec.family_of(method)
                choice = self.plan.choices.get(family.name)
                if choice is None:
                    reason = f"waits for the learning-rate search of family {family.name!r}"
                    group = WaitingGroup(
                        "variant", family.name, (method,), variant.seeds, reason=reason, variant=variant.name
                    )
                    self.plan.waiting.append(group)
                    continue
                for seed in variant.seeds:
                    overrides = {SEED_KEY: seed, LR_KEY: choice.learning_rate, **variant.overrides}
                    self.add(
                        method, "variant", overrides, needs_test=True, choice=choice, variant=variant.name
                    )


def build_plan(spec: SweepSpec, records: dict[str, dict[str, Any]], resolver: Resolver | None = None) -> Plan:
    """The plan of ``spec`` given the ``records`` so far (by run name); ``resolver`` resolves CLI arguments."""
    builder = _PlanBuilder(spec, records, resolver or caching_resolver())
    if spec.zero_shot:
        builder.add(spec.zero_shot, "zero_shot", {}, needs_test=True, kind="zero_shot")
    for family in spec.family_list:
        builder.family(family)
    if spec.entropy_sweep is not None:
        builder.entropy()
    builder.variants()
    return builder.plan
