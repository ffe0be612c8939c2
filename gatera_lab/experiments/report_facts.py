"""The results page's facts: the budget, the machine and time, the commands, and the runs still missing."""

from __future__ import annotations

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.machine import describe
from gatera_lab.experiments.plan import run_status
from gatera_lab.experiments.report_data import ReportData, plan_config, recorded
from gatera_lab.experiments.run_config import get_path

NEEDS = {
    "needs_gates": "its gates measured from its checkpoint",
    "needs_gate_skip": "its gate-skip measurement",
}


def test_subset(config: dict) -> str:
    """Which test rows the runs score, in words."""
    sample, limit = (
        get_path(config, "data.init_args.test_sample"),
        get_path(config, "data.init_args.test_limit"),
    )
    if sample:
        seed = get_path(config, "data.init_args.test_sample_seed") or 0
        return f"the same seeded random sample of {sample} rows of each test set (seed {seed}) for every run"
    return f"the first {limit} rows of each test set" if limit else "every row of each test set"


def protocol(config: dict) -> str:
    """How a test row is answered, in words."""
    if get_path(config, "data.init_args.format") == "choice_text":
        return (
            "choice-text protocol: each choice's text scored as a continuation of a plain prompt built from the "
            "row's fields; acc_norm (score per character) on PIQA, SIQA, HellaSwag, ARC-e, ARC-c and OBQA, acc "
            "on BoolQ and WinoGrande"
        )
    return f"{get_path(config, 'model.eval_protocol')} protocol on the candidate labels (not the papers' generation)"


def budget(data: ReportData) -> str:
    c = data.config
    method = get_path(c, "model.method.init_args") or {}
    tasks = get_path(c, "data.init_args.tasks") or list(COMMONSENSE_COLUMNS)
    cap, val = get_path(c, "data.init_args.per_task_cap"), get_path(c, "data.init_args.val_size") or 0
    steps, batch = get_path(c, "trainer.max_steps"), get_path(c, "data.init_args.batch_size")
    accumulate = get_path(c, "trainer.accumulate_grad_batches") or 1
    rows = f"{len(tasks) * cap - val}" if isinstance(cap, int) else "all"
    seen = steps * batch * accumulate if isinstance(steps, int) and isinstance(batch, int) else "?"
    facts = [
        f"base model `{get_path(c, 'model.model')}` ({get_path(c, 'model.dtype')}), rank {method.get('r')} "
        f"(alpha {method.get('alpha')}) on {', '.join(method.get('target_modules') or [])}",
        f"training data: {cap} rows from each of the {len(tasks)} train sets (data seed "
        f"{get_path(c, 'data.init_args.seed')}), {val} of the pooled rows held out for validation, "
        f"{rows} training rows, the same rows for every method and seed; "
        + (
            "a run's seed (`seed_everything`) draws the adapter's initialisation and the training order, and "
            "every method at one seed sees the same batches"
            if get_path(c, "data.init_args.order_seed") is None
            else f"the training order is drawn from order seed {get_path(c, 'data.init_args.order_seed')}"
        ),
        f"{steps} optimizer steps of {batch} sequences of "
        + (
            f"at most {get_path(c, 'data.init_args.max_length')} tokens"
            if get_path(c, "data.init_args.max_length")
            else "any length (max_length from the data: no row is cut)"
        )
        + f" (gradient accumulation {accumulate}; {seen} sequences seen), warm-up "
        f"{get_path(c, 'model.warmup_steps')} steps, {get_path(c, 'model.lr_schedule')} decay, loss on "
        f"{get_path(c, 'model.loss_on')} tokens",
        f"test: {test_subset(c)} ({protocol(c)})",
        "learning-rate grids: "
        + "; ".join(
            f"{f.name} {', '.join(f'{r:g}' for r in f.learning_rates)}" for f in data.spec.family_list
        )
        + f" (search seed {data.spec.search_seed}); final seeds {', '.join(str(s) for s in data.spec.seeds)}",
    ]
    if data.spec.entropy_sweep:
        sweep = data.spec.entropy_sweep
        facts.append(
            f"entropy sweep: {sweep.method} at lambda {', '.join(f'{v:g}' for v in sweep.values)} "
            f"(seeds {', '.join(str(s) for s in sweep.seeds)}); the headline {sweep.method} uses its config's "
            f"lambda {get_path(plan_config(data, sweep.method), 'model.method.init_args.entropy_weight')}"
        )
    text = "\n".join(f"- {fact}" for fact in facts)
    return text + (f"\n\nFrom the sweep file: {data.spec.budget}\n" if data.spec.budget else "\n")


def _peak(stages: list[dict]) -> str:
    """The largest peak memory the ``stages`` recorded, as ``", peak memory X GiB"``; "" where none did."""
    peaks = [stage["peak_memory_gib"] for stage in stages if stage.get("peak_memory_gib")]
    return f", peak memory {max(peaks):.1f} GiB" if peaks else ""


def machine_and_time(data: ReportData) -> str:
    """The machines of the recorded runs, the compute they recorded, each method's time and peak memory per
    fit, and the tests' speed."""
    machines: dict[str, int] = {}
    fits: dict[str, list[dict]] = {}
    tests: list[dict] = []  # tests that recorded their rows and time
    fit_seconds = test_seconds = 0.0
    for record in recorded(data):
        machine = describe(record.get("machine"))
        machines[machine] = machines.get(machine, 0) + 1
        fit, test = record.get("fit") or {}, record.get("test") or {}
        fit_seconds += fit.get("wall_seconds") or 0.0
        test_seconds += test.get("wall_seconds") or 0.0
        if fit.get("wall_seconds"):
            fits.setdefault(record["method"], []).append(fit)
        if (test.get("rows") or {}).get("ids") and test.get("wall_seconds"):
            tests.append(test)
    lines = [f"- {text}: {count} run(s)" for text, count in machines.items()] or ["- no run recorded yet"]
    lines.append(
        f"- compute recorded: {fit_seconds / 3600:.2f} h of training, {test_seconds / 3600:.2f} h of testing"
    )
    for method, stages in fits.items():
        minutes = [stage["wall_seconds"] / 60 for stage in stages]
        lines.append(
            f"- {method}: {sum(minutes) / len(minutes):.1f} min per training run ({len(minutes)} run(s), "
            f"{min(minutes):.1f} to {max(minutes):.1f}){_peak(stages)}"
        )
    if tests:
        rows = sum(len(test["rows"]["ids"]) for test in tests)
        minutes = [test["wall_seconds"] / 60 for test in tests]
        lines.append(
            f"- tests: {len(tests)} run(s), {rows / sum(minutes) / 60:.2f} rows per second on average "
            f"({sum(minutes) / len(tests):.1f} min per test of {rows // len(tests):,} rows, "
            f"{min(minutes):.1f} to {max(minutes):.1f}){_peak(tests)}"
        )
    return "\n".join(lines) + "\n"


def commands(data: ReportData, report_command: str) -> str:
    sweeps = sorted({(record.get("sweep") or {}).get("command") for record in recorded(data)} - {None})
    lines = ["Sweep (as run):", "", "```"]
    lines += sweeps or [f"gatera-lab sweep --sweep {data.spec.path}"]
    lines += [
        "```",
        "",
        "This page:",
        "",
        "```",
        report_command,
        "```",
        "",
        "Every run (fit, then test):",
        "",
    ]
    lines += ["<details><summary>commands of the recorded runs</summary>", "", "```"]
    for record in recorded(data):
        lines += [
            command for stage in ("fit", "test") if (command := (record.get("commands") or {}).get(stage))
        ]
    return "\n".join([*lines, "```", "", "</details>"]) + "\n"


def missing(data: ReportData) -> str:
    """The runs of the plan that still need something, the waiting groups, and records of no run."""
    lines = []
    for run in data.plan.runs:
        status = run_status(run, data.records.get(run.name))
        if status != "done":
            fit = status == "pending" and run.kind == "train"
            need = ("fit + test" if run.needs_test else "fit") if fit else NEEDS.get(status, "test")
            lines.append(f"- `{run.name}` ({'+'.join(run.phases)}): needs {need}")
    lines += [f"- {group.describe()}" for group in data.plan.waiting]
    extra = sorted(set(data.records) - {run.name for run in data.plan.runs})
    if extra:
        lines.append(
            f"- ({len(extra)} record(s) in the folder belong to no run of this plan and are not shown)"
        )
    return "\n".join(lines) + "\n" if lines else "None: every run of the sweep is recorded.\n"
