"""``gatera-lab sweep``: run what a sweep file plans and is not recorded yet.

    gatera-lab sweep --sweep configs/sweeps/reproduction.yaml --dry-run
    gatera-lab sweep --sweep configs/sweeps/reproduction.yaml [--only NAME ...] [--budget-minutes M]

``--dry-run`` prints the plan (every run with its status and estimate, the groups that wait for a
learning-rate choice) and runs nothing. Otherwise the plan is rebuilt after every run (a finished search
names its family's final runs) and the first open run is done, until nothing is left, ``--max-runs`` runs
were done, or the next run's estimate would overrun ``--budget-minutes``. The estimate of a run is

    seconds = seconds_per_step * max_steps (its fit) + seconds_per_test (its test) + seconds_per_gate_skip

``--only`` keeps the runs whose name, method, family, phase or variant is NAME (and a kept final run's search). A
failed run is reported and skipped; the exit status is then 1. Several workers may share a sweep: each
claims a run before starting it (`run_locks`) and, while only runs that others hold are left, waits. With
``concurrent_fits: N`` at most N fits run at once over all workers (a fit's memory is the largest; a worker
without a fit slot takes a run that only needs its test or measurements).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from filelock import FileLock

from gatera_lab.commands.command_entry import run_command
from gatera_lab.errors import ConfigError
from gatera_lab.experiments.plan import Plan, PlannedRun, build_plan, run_status
from gatera_lab.experiments.records import load_records
from gatera_lab.experiments.run_config import caching_resolver, get_path
from gatera_lab.experiments.run_locks import claim_run, claimed_by_others, take_slot
from gatera_lab.experiments.run_process import RunContext, RunFailed, execute_run
from gatera_lab.experiments.sweep_file import SweepSpec, load_sweep

POLL_SECONDS = 30.0
GATE_PROBE_SECONDS = 180.0  # a gate probe from a checkpoint (`checkpoint_stages.gates_stage`)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gatera-lab sweep", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--sweep", required=True, help="the sweep file (configs/sweeps/*.yaml)")
    add(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="runs with this name, method, family or phase",
    )
    add("--dry-run", action="store_true", help="print the plan and estimates; run nothing")
    add("--records", default=None, help="records folder (default: the sweep file's)")
    add("--runs", default=None, help="run folders (default: the sweep file's)")
    add("--launcher", choices=("subprocess", "inprocess"), default=None, help="default: the sweep file's")
    add("--threads", type=int, default=None, help="torch threads per run (default: the sweep file's)")
    add("--budget-minutes", type=float, default=None, help="start no run whose estimate ends past this")
    add("--max-runs", type=int, default=None, help="stop after this many runs")
    return parser


def estimate_seconds(run: PlannedRun, status: str, spec: SweepSpec) -> float:
    """Seconds ``run`` still needs in ``status`` (see the module docstring)."""
    if status == "done":
        return 0.0
    steps = get_path(run.resolved, "trainer.max_steps", 0)
    fit = spec.seconds_per_step * max(steps, 0) if run.kind == "train" and status == "pending" else 0.0
    test = spec.seconds_per_test if status in ("pending", "needs_test") and run.needs_test else 0.0
    gates = GATE_PROBE_SECONDS if status == "needs_gates" else 0.0
    return fit + test + gates + (spec.seconds_per_gate_skip if run.gate_skip else 0.0)


def selection(plan: Plan, only: list[str]) -> set[str]:
    """Names of the runs ``--only`` keeps, with the search runs that a kept waiting group needs first."""
    if not only:
        return {run.name for run in plan.runs}
    tags: dict[str, set[str]] = {}
    for group in plan.waiting:
        tags.setdefault(group.family, set()).update(group.tags())
    known = set().union(*(run.tags() for run in plan.runs), *tags.values())
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ConfigError(
            f"option --only: {unknown[0]!r} is no run name, method, family or phase of this sweep; "
            "see `gatera-lab sweep --sweep FILE --dry-run` for the names"
        )
    families = {family for family, names in tags.items() if names & set(only)}
    return {
        run.name
        for run in plan.runs
        if run.tags() & set(only) or (run.family in families and "lr_search" in run.phases)
    }


def print_plan(plan: Plan, records: dict, spec: SweepSpec, only: list[str]) -> None:
    """Every selected run with its status and estimate, the waiting groups and the choices made."""
    total, selected = 0.0, selection(plan, only)
    print(f"sweep {spec.name!r} ({spec.path}): {len(plan.runs)} runs named so far")
    for run in (run for run in plan.runs if run.name in selected):
        status = run_status(run, records.get(run.name))
        seconds = estimate_seconds(run, status, spec)
        total += seconds
        note = "" if status == "done" else f", about {seconds / 60:.0f} min"
        print(f"  [{status:>10}] {run.name}  ({'+'.join(run.phases)}{note})")
    for group in plan.waiting:
        print(f"  [   waiting] {group.describe()}")
    for family, choice in plan.choices.items():
        print(f"  learning rate of {family}: {choice.reason}")
    print(f"estimated time left for the named runs: {total / 60:.0f} min (waiting groups not counted)")


def next_run(
    todo: list[PlannedRun], statuses: dict[str, str], spec: SweepSpec, runs_dir: Path
) -> tuple[PlannedRun | None, FileLock | None]:
    """The first run of ``todo`` this worker can start, with the fit slot it took for it (`concurrent_fits`:
    a run that needs a fit waits for a free slot, and a run that needs no fit goes first meanwhile)."""
    for run in todo:
        if not (spec.concurrent_fits and run.kind == "train" and statuses[run.name] == "pending"):
            return run, None
        slot = take_slot(runs_dir, "fit", spec.concurrent_fits)
        if slot is not None:
            return run, slot
    return None, None


def _release(slot: FileLock | None) -> None:
    if slot is not None and slot.is_locked:
        slot.release()


def run_sweep(args: argparse.Namespace, argv: list[str], wait: Callable[[float], None] = time.sleep) -> int:
    """Run the sweep ``args`` names; returns the exit status.

    Args:
        args: the parsed options (`build_parser`).
        argv: the options as given, for the command recorded with every run.
        wait: called with ``POLL_SECONDS`` whenever only runs that other workers hold are left.
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

    def current() -> tuple[dict, Plan, dict[str, str]]:
        records = load_records(records_dir)
        plan = build_plan(spec, records, resolver)
        return records, plan, {run.name: run_status(run, records.get(run.name)) for run in plan.runs}

    records, plan, statuses = current()
    selected = selection(plan, args.only)
    if args.dry_run:
        print_plan(plan, records, spec, args.only)
        return 0
    recorded = [run.name for run in plan.runs if run.name in selected and statuses[run.name] == "done"]
    if recorded:
        print(f"skipping {len(recorded)} run(s) already recorded in {records_dir}: {', '.join(recorded)}")
    started, done, failed, attempted = time.perf_counter(), 0, [], set()
    while args.max_runs is None or done < args.max_runs:
        records, plan, statuses = current()
        selected = selection(plan, args.only)
        open_runs = [  # tried once per status: a search run that became a final one is visited again
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
        run, slot = next_run(todo, statuses, spec, context.runs_dir)
        if run is None:
            print("waiting: the open runs need a fit and other workers hold every fit slot", flush=True)
            wait(POLL_SECONDS)
            continue
        status = statuses[run.name]
        estimate = estimate_seconds(run, status, spec)
        if (
            args.budget_minutes is not None
            and time.perf_counter() - started + estimate > 60 * args.budget_minutes
        ):
            minutes = f"{estimate / 60:.0f} min"
            print(
                f"stopping: {run.name} needs about {minutes}, past --budget-minutes {args.budget_minutes:g}"
            )
            _release(slot)
            break
        with claim_run(context.runs_dir, run.name) as won:
            record = load_records(records_dir).get(run.name) if won else None  # as it is now that it is ours
            if not won or run_status(run, record) != status:
                _release(slot)
                continue  # another worker claimed or finished it a moment ago
            attempted.add((run.name, status, tuple(run.phases)))
            print(
                f"[{done + len(failed) + 1}] {run.name} ({status}, about {estimate / 60:.0f} min)", flush=True
            )
            try:
                execute_run(run, record, context, after_fit=partial(_release, slot))
                done += 1
            except RunFailed as error:
                failed.append(run.name)
                print(f"gatera-lab sweep: run failed: {error}", file=sys.stderr)
            finally:
                _release(slot)
    records, plan, statuses = current()
    left = sum(status != "done" for status in statuses.values())
    print(
        f"sweep {spec.name!r}: {done} job(s) done (a fit, a test, or both) in "
        f"{(time.perf_counter() - started) / 60:.0f} min, {len(failed)} failed, {left} named run(s) left, "
        f"{len(plan.waiting)} group(s) waiting"
    )
    for name in failed:
        print(f"  failed: {name}")
    return 1 if failed else 0


def main(argv: list[str], wait: Callable[[float], None] = time.sleep) -> int:
    """Entry point of ``gatera-lab sweep``; returns the exit status (2 on a bad option or sweep file)."""
    return run_command("sweep", build_parser(), lambda args: run_sweep(args, argv, wait), argv)
