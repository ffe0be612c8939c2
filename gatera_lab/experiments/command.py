"""``gatera-lab sweep``: run what a sweep file plans and is not recorded yet.

    gatera-lab sweep --sweep configs/sweeps/reproduction.yaml --dry-run
    gatera-lab sweep --sweep configs/sweeps/reproduction.yaml [--only NAME ...] [--budget-minutes M]

``--dry-run`` prints the plan (every run with its status and estimated time, and the runs that wait for a
learning-rate choice) and runs nothing. Otherwise the plan is rebuilt after every run (a finished
learning-rate search makes its family's final runs appear) and the first run that still needs something is
done, until nothing is left, ``--max-runs`` runs were done, or the next run's estimate would overrun
``--budget-minutes``. ``--only`` keeps the runs whose name, method, family or phase is NAME (and what they
need first: a final run needs its family's search). A failed run is reported and skipped; the exit status is
then 1.

Several workers may run the same sweep at once (e.g. two with ``--threads 1`` on two cores): each claims a
run before starting it (`run_claims`: an OS lock that ends with its worker), skips runs another worker
holds, and while only claimed runs are left it waits for them (their records may name new final runs)
instead of stopping.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.experiments.estimate import estimate_seconds
from gatera_lab.experiments.plan import Plan, build_plan, run_status
from gatera_lab.experiments.records import load_records
from gatera_lab.experiments.run_claims import claim_run, claimed_by_others
from gatera_lab.experiments.run_config import caching_resolver
from gatera_lab.experiments.run_executor import RunContext, RunFailed, execute_run
from gatera_lab.experiments.sweep_file import LAUNCHERS, SweepSpec, load_sweep

POLL_SECONDS = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatera-lab sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", required=True, help="the sweep file (configs/sweeps/*.yaml)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="only runs with this name, method, family or phase (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and estimates; run nothing")
    parser.add_argument("--records", default=None, help="records folder (default: the sweep file's)")
    parser.add_argument("--runs", default=None, help="run folders (default: the sweep file's)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default=None, help="default: the sweep file's")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: sweep file)"
    )
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="start no run whose estimate would end past this many minutes from now",
    )
    parser.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    return parser


def _minutes(seconds: float) -> str:
    return "?" if math.isnan(seconds) else f"{seconds / 60:.0f} min"


def selection(plan: Plan, only: list[str]) -> set[str]:
    """Names of the runs ``--only`` keeps, with the search runs that a kept waiting group needs first."""
    if not only:
        return {run.name for run in plan.runs}
    wanted = set(only)
    names = {run.name for run in plan.runs if run.tags() & wanted}
    families = {
        group.family for group in plan.waiting if wanted & {group.family, group.phase, *group.methods}
    }
    names |= {run.name for run in plan.runs if run.family in families and "lr_search" in run.phases}
    return names


def _check_only(plan: Plan, only: list[str]) -> None:
    known = set().union(*(run.tags() for run in plan.runs)) if plan.runs else set()
    known |= {group.family for group in plan.waiting} | {
        method for group in plan.waiting for method in group.methods
    }
    known |= {group.phase for group in plan.waiting}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ConfigError(
            f"option --only: {unknown[0]!r} is no run name, method, family or phase of this sweep; "
            "see `gatera-lab sweep --sweep FILE --dry-run` for the names"
        )


def print_plan(plan: Plan, records: dict, spec: SweepSpec, only: list[str]) -> float:
    """Print every run with its status and estimate; returns the total estimate in seconds."""
    total, selected = 0.0, selection(plan, only)
    print(f"sweep {spec.name!r} ({spec.path}): {len(plan.runs)} runs named so far")
    for run in plan.runs:
        if run.name not in selected:
            continue
        status = run_status(run, records.get(run.name))
        seconds = estimate_seconds(run, status, spec.estimate)
        total += 0.0 if math.isnan(seconds) else seconds
        note = "" if status == "done" else f", about {_minutes(seconds)}"
        print(f"  [{status:>10}] {run.name}  ({'+'.join(run.phases)}{note})")
    for group in plan.waiting:
        print(f"  [   waiting] {group.describe()}")
    for family, choice in plan.choices.items():
        print(f"  learning rate of {family}: {choice.reason}")
    return total


def waiting_estimate(plan: Plan, spec: SweepSpec) -> float:
    """Estimated seconds of the runs that cannot be named yet.

    A waiting run at the search seed (and the method config's lambda) will be its search run, so it costs
    its test only; an entropy run that equals a final run costs nothing more; every other one costs a fit
    and a test, like the first training run of the plan.
    """
    template = plan.first_training_run()
    if template is None:
        return math.nan
    full = estimate_seconds(dataclasses.replace(template, needs_test=True), "pending", spec.estimate)
    test_only = estimate_seconds(template, "needs_test", spec.estimate)
    total = 0.0
    for group in plan.waiting:
        for method in group.methods:
            search = next(
                (run for run in plan.runs if run.method == method and "lr_search" in run.phases), None
            )
            headline = search.entropy_weight if search else None
            for seed in group.seeds:
                for value in group.entropy_weights or (headline,):
                    if group.phase == "entropy" and value == headline and seed in spec.seeds:
                        continue  # the final run of that seed
                    total += test_only if seed == spec.search_seed and value == headline else full
    return total


def run_sweep(args: argparse.Namespace, argv: list[str], wait: Callable[[float], None] = time.sleep) -> int:
    """Run the sweep ``args`` names; returns the exit status.

    Args:
        args: the parsed options (`build_parser`).
        argv: the options as given, for the command recorded with every run.
        wait: called with ``POLL_SECONDS`` whenever only runs that other workers hold are left, before the
            plan is looked at again (tests pass a hook that lets the other worker go).
    """
    spec = load_sweep(args.sweep)
    records_dir = Path(args.records or spec.records)
    context = RunContext(
        records_dir=records_dir,
        runs_dir=Path(args.runs or spec.runs),
        sweep_file=str(spec.path),
        sweep_command=shlex.join(["gatera-lab", "sweep", *argv]),
        mode=args.launcher or spec.launcher,
        threads=args.threads or spec.threads,
    )
    resolver = caching_resolver()
    records = load_records(records_dir)
    plan = build_plan(spec, records, resolver)
    _check_only(plan, args.only)
    if args.dry_run:
        named = print_plan(plan, records, spec, args.only)
        later = waiting_estimate(plan, spec) if plan.waiting else 0.0
        print(
            f"estimated time left: {_minutes(named)} for the named runs"
            + (f" + about {_minutes(later)} for the waiting ones" if plan.waiting else "")
            + f" (time model: {spec.estimate})"
        )
        return 0
    selected = selection(plan, args.only)
    recorded = [
        run.name
        for run in plan.runs
        if run.name in selected and run_status(run, records.get(run.name)) == "done"
    ]
    if recorded:
        print(f"skipping {len(recorded)} run(s) already recorded in {records_dir}: {', '.join(recorded)}")
    started, done, failed, attempted = time.perf_counter(), 0, [], set()
    while args.max_runs is None or done < args.max_runs:
        records = load_records(records_dir)
        plan = build_plan(spec, records, resolver)
        selected = selection(plan, args.only)
        statuses = {run.name: run_status(run, records.get(run.name)) for run in plan.runs}
        open_runs = [  # a run is tried once per status: a search run that became a final one is visited again
            run
            for run in plan.runs
            if run.name in selected
            and statuses[run.name] != "done"
            and (run.name, statuses[run.name], tuple(run.phases)) not in attempted
        ]
        held = claimed_by_others(context.runs_dir, [run.name for run in open_runs])
        todo = [run for run in open_runs if run.name not in held]
        if not todo:
            if not held:
                break
            print(f"waiting for {len(held)} run(s) other workers hold: {', '.join(sorted(held))}", flush=True)
            wait(POLL_SECONDS)
            continue
        run = todo[0]
        status = statuses[run.name]
        estimate = estimate_seconds(run, status, spec.estimate)
        elapsed = time.perf_counter() - started
        if args.budget_minutes is not None and elapsed + estimate > 60 * args.budget_minutes:
            print(
                f"stopping: {run.name} needs about {_minutes(estimate)}, past --budget-minutes {args.budget_minutes:g}"
            )
            break
        with claim_run(context.runs_dir, run.name) as won:
            if not won:
                continue  # another worker claimed it a moment ago
            record = load_records(records_dir).get(run.name)  # as it is now that the run is ours
            if run_status(run, record) != status:
                continue  # another worker finished it a moment ago
            attempted.add((run.name, status, tuple(run.phases)))
            print(f"[{done + len(failed) + 1}] {run.name} ({status}, about {_minutes(estimate)})", flush=True)
            try:
                execute_run(run, record, context)
                done += 1
            except RunFailed as error:
                failed.append(run.name)
                print(f"gatera-lab sweep: run failed: {error}", file=sys.stderr)
    records = load_records(records_dir)
    plan = build_plan(spec, records, resolver)
    left = [run.name for run in plan.runs if run_status(run, records.get(run.name)) != "done"]
    print(
        f"sweep {spec.name!r}: {done} job(s) done (a fit, a test, or both) in "
        f"{_minutes(time.perf_counter() - started)}, "
        f"{len(failed)} failed, {len(left)} named run(s) left, {len(plan.waiting)} group(s) waiting"
    )
    for name in failed:
        print(f"  failed: {name}")
    return 1 if failed else 0


def main(argv: list[str], wait: Callable[[float], None] = time.sleep) -> int:
    """Entry point of ``gatera-lab sweep``; returns the exit status (2 on a bad option or sweep file).

    ``wait`` is how the sweep waits for runs that other workers hold (see `run_sweep`).
    """
    args = build_parser().parse_args(argv)
    try:
        return run_sweep(args, argv, wait)
    except GateraError as error:
        print(f"gatera-lab sweep: error: {error}", file=sys.stderr)
        return 2
