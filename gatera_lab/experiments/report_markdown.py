"""The results page (Markdown) of a sweep, computed from its plan and records; pictures as PNG beside it.

Sections: what was and was not reproduced (`claims`), the test table (zero-shot row, each method's
``mean ± std`` over seeds), the published LLaMA-3-8B rows, the learning-rate choice of each family, the
entropy-weight sweep, the gate statistics, the pictures, the budget, the machine and time, the exact
commands, and the runs still missing. Every number is read from a record; nothing is typed in here except
the published reference rows (`published`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure

from gatera_lab.evaluation.results_table import COMMONSENSE_COLUMNS
from gatera_lab.experiments.claims import GateClaim, compare, gate_difference
from gatera_lab.experiments.machine import describe
from gatera_lab.experiments.plan import Plan, run_status
from gatera_lab.experiments.published import PUBLISHED_DIFFERENCES, PUBLISHED_LLAMA3_8B, PUBLISHED_SOURCE
from gatera_lab.experiments.report_figures import (
    entropy_histogram_figure,
    heatmap_figure,
    prefill_decode_figure,
)
from gatera_lab.experiments.run_config import get_path
from gatera_lab.experiments.seed_results import (
    entropy_runs,
    entropy_tested,
    finals_by_method,
    gate_value,
    mean_std,
    seed_cells,
    zero_shot,
)
from gatera_lab.experiments.sweep_spec import SweepSpec

HEADER = ["Model", *COMMONSENSE_COLUMNS.values(), "Avg"]


@dataclass
class Report:
    """The page's Markdown and its pictures by file name."""

    markdown: str
    figures: dict[str, Figure] = field(default_factory=dict)


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.{digits}f}"


def _cell(mean: float, std: float) -> str:
    return _pct(mean) if math.isnan(std) else f"{_pct(mean)} ± {_pct(std)}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


class _Builder:
    def __init__(
        self,
        spec: SweepSpec,
        plan: Plan,
        records: dict[str, dict[str, Any]],
        prefix: str,
        majority: dict[str, float] | None = None,
    ) -> None:
        self.spec, self.plan, self.records, self.prefix = spec, plan, records, prefix
        self.majority = majority
        self.finals = finals_by_method(plan, records)
        self.zero_shot = zero_shot(plan, records)
        self.entropy = entropy_runs(plan, records)
        self.figures: dict[str, Figure] = {}
        template = plan.first_training_run() or (plan.runs[0] if plan.runs else None)
        self.config = template.resolved if template else {}

    # ------------------------------------------------------------------ claims
    def claims(self) -> list[str]:
        finals, lines = self.finals, []
        pairs = [
            (
                family.name,
                [m for m in family.methods if m.endswith("_gate")],
                [m for m in family.methods if not m.endswith("_gate")],
            )
            for family in self.spec.families
        ]
        gated = [finals[g[0]] for _, g, u in pairs if g and u and g[0] in finals and u[0] in finals]
        ungated = [finals[u[0]] for _, g, u in pairs if g and u and g[0] in finals and u[0] in finals]
        if gated:
            lines.append(
                compare("gated mean minus ungated mean (over the families)", gated, ungated, None).sentence()
            )
        for _, g, u in pairs:
            if g and u and g[0] in finals and u[0] in finals:
                paper = PUBLISHED_DIFFERENCES.get(f"{g[0]} - {u[0]}")
                lines.append(
                    compare(f"{g[0]} minus {u[0]}", [finals[g[0]]], [finals[u[0]]], paper).sentence()
                )
        if "hira" in finals and "lora" in finals:
            paper = PUBLISHED_DIFFERENCES["hira - lora"]
            lines.append(compare("hira minus lora", [finals["hira"]], [finals["lora"]], paper).sentence())
        lines += self.zero_shot_claim()
        lines += self.majority_claim()
        lines += self.entropy_claims()
        lines += self.gate_claims()
        return lines

    def majority_claim(self) -> list[str]:
        """Per method, the tasks where its mean test accuracy beats the majority-label baseline."""
        if self.majority is None or not any(self.finals.values()):
            return []
        parts = []
        for method, runs in self.finals.items():
            if not runs:
                continue
            cells = seed_cells(runs)
            above = [
                COMMONSENSE_COLUMNS[task]
                for task in COMMONSENSE_COLUMNS
                if cells[task][0] > self.majority[task] + 1e-4
            ]
            gain = 100 * (cells["avg"][0] - self.majority["avg"])
            parts.append(f"{method} {gain:+.2f} (above it on {', '.join(above) if above else 'no task'})")
        return [
            "Fine-tuned minus the majority-label baseline (always the test subset's most common label per "
            f"task; average {100 * self.majority['avg']:.2f}), average test accuracy in points, mean over "
            f"seeds: {'; '.join(parts)}."
        ]

    def zero_shot_claim(self) -> list[str]:
        if self.zero_shot is None:
            return []
        gains = [
            f"{method} {100 * (mean_std([run.average for run in runs.values()])[0] - self.zero_shot.average):+.2f}"
            for method, runs in self.finals.items()
            if runs
        ]
        if not gains:
            return []
        return [
            "Fine-tuned minus zero-shot, average test accuracy (points, mean over seeds; test-subset standard "
            f"error of the zero-shot average {100 * self.zero_shot.standard_error:.2f}): {', '.join(gains)}."
        ]

    def entropy_claims(self) -> list[str]:
        sweep = self.spec.entropy_sweep
        if sweep is None:
            return []
        by_lambda = entropy_tested(self.plan, self.records)
        lines = []
        zero = by_lambda.get(0.0)
        for value, runs in by_lambda.items():
            if value > 0 and zero:
                label = f"{sweep.method} at lambda {value:g} minus lambda 0 (no entropy term)"
                lines.append(
                    compare(
                        label, [runs], [zero], PUBLISHED_DIFFERENCES["entropy > 0 - entropy 0"]
                    ).sentence()
                )
        near = {
            f"lambda {value:g}": [gate_value(record, "near_binary") for record in seeds.values()]
            for value, seeds in self.entropy.items()
        }
        if near:
            shares = "; ".join(f"{label}: {_num(mean_std(values)[0])}" for label, values in near.items())
            lines.append(
                "Near-binary gates (share of gates < 0.1 or > 0.9 on held-out rows; the paper: the entropy "
                f"term makes gates near-binary): {shares}."
            )
        return lines

    def gate_claims(self) -> list[str]:
        prompt, probe = {}, {}
        for method, runs in self.finals.items():
            for seed, run in runs.items():
                if run.record.get("gates"):
                    prompt[f"{method} seed {seed}"] = gate_difference(
                        run.record, "response_mean", "prompt_mean"
                    )
                    probe[f"{method} seed {seed}"] = gate_difference(
                        run.record, "probe.decode_mean", "probe.prefill_mean"
                    )
        return [
            GateClaim(
                "Gates higher on response tokens than on prompt tokens (held-out rows)", prompt
            ).sentence(),
            GateClaim(
                "Gates higher on decode passes than on the prefill pass (probe generation)", probe
            ).sentence(),
        ]

    # ------------------------------------------------------------------ tables
    def accuracy_table(self) -> str:
        rows = []
        if self.zero_shot is not None:
            accuracy = self.zero_shot.accuracy
            rows.append(
                [
                    "zero-shot (base model)",
                    *[_pct(accuracy.get(task)) for task in COMMONSENSE_COLUMNS],
                    _pct(self.zero_shot.average),
                    "-",
                ]
            )
        else:
            rows.append(["zero-shot (base model)", *["-"] * (len(COMMONSENSE_COLUMNS) + 1), "missing"])
        if self.majority is not None:
            shares = [_pct(self.majority[task]) for task in COMMONSENSE_COLUMNS]
            rows.append(["majority label (baseline)", *shares, _pct(self.majority["avg"]), "-"])
        for method, runs in self.finals.items():
            if not runs:
                rows.append([method, *["-"] * (len(COMMONSENSE_COLUMNS) + 1), "0"])
                continue
            cells = seed_cells(runs)
            row = [_cell(*cells[task]) for task in COMMONSENSE_COLUMNS]
            seeds = ", ".join(str(seed) for seed in runs)
            rows.append([method, *row, _cell(*cells["avg"]), f"{len(runs)} ({seeds})"])
        return _table([*HEADER, "seeds"], rows)

    def published_table(self) -> str:
        rows = [
            [
                name,
                *[_num(values.get(task), 1) if task in values else "-" for task in COMMONSENSE_COLUMNS],
                _num(values["avg"], 2),
            ]
            for name, values in PUBLISHED_LLAMA3_8B.items()
        ]
        return _table(HEADER, rows)

    def learning_rate_tables(self) -> str:
        parts = []
        for family in self.spec.families:
            choice = self.plan.choices.get(family.name)
            grid: dict[float, dict[str, float]] = {}
            for run in self.plan.runs:
                if "lr_search" in run.phases and run.family == family.name and run.name in self.records:
                    accuracy = ((self.records[run.name].get("validation") or {}).get("accuracy") or {}).get(
                        "avg"
                    )
                    grid.setdefault(run.learning_rate, {})[run.method] = (
                        math.nan if accuracy is None else accuracy
                    )
            rows = []
            for rate in family.learning_rates:
                values = grid.get(rate, {})
                mean = mean_std([values.get(method, math.nan) for method in family.methods])[0]
                chosen = "**chosen**" if choice and choice.learning_rate == rate else ""
                rows.append(
                    [
                        f"{rate:g}",
                        *[_pct(values.get(method)) for method in family.methods],
                        _pct(mean),
                        chosen,
                    ]
                )
            header = ["learning rate", *[f"{method} val acc" for method in family.methods], "mean", ""]
            reason = choice.reason if choice else "not chosen yet: the search is incomplete."
            parts.append(
                f"**{family.name}** (search seed {self.spec.search_seed}):\n\n{_table(header, rows)}\n{reason}\n"
            )
        return "\n".join(parts)

    def entropy_table(self) -> str:
        rows = []
        for value, seeds in self.entropy.items():
            for seed, record in seeds.items():
                test = record.get("test") or {}
                accuracy = test.get("accuracy") or {}
                tasks = [accuracy[task] for task in COMMONSENSE_COLUMNS if accuracy.get(task) is not None]
                validation = ((record.get("validation") or {}).get("accuracy") or {}).get("avg")
                rows.append(
                    [
                        f"{value:g}",
                        str(seed),
                        _pct(validation),
                        _pct(sum(tasks) / len(tasks) if tasks else None),
                        *[
                            _num(gate_value(record, key))
                            for key in (
                                "mean",
                                "near_binary",
                                "prompt_mean",
                                "response_mean",
                                "probe.prefill_mean",
                                "probe.decode_mean",
                            )
                        ],
                    ]
                )
        header = [
            "lambda",
            "seed",
            "val acc",
            "test avg",
            "gate mean",
            "near-binary",
            "prompt",
            "response",
            "prefill",
            "decode",
        ]
        return _table(header, rows) if rows else "No entropy-sweep run is recorded yet.\n"

    def gate_table(self) -> str:
        rows = []
        keys = (
            "mean",
            "near_binary",
            "entropy",
            "prompt_mean",
            "response_mean",
            "probe.prefill_mean",
            "probe.decode_mean",
        )
        for method, runs in self.finals.items():
            records = [run.record for run in runs.values() if run.record.get("gates")]
            if records:
                cells = []
                for key in keys:
                    mean, std = mean_std([gate_value(record, key) for record in records])
                    cells.append(_num(mean) + ("" if math.isnan(std) else f" ± {_num(std)}"))
                rows.append([method, str(len(records)), *cells])
        header = [
            "method",
            "runs",
            "gate mean",
            "near-binary",
            "entropy (nats)",
            "prompt",
            "response",
            "prefill",
            "decode",
        ]
        return _table(header, rows) if rows else "No gated final run is recorded yet.\n"

    # ------------------------------------------------------------------ pictures
    def pictures(self) -> str:
        lines = []
        settings = {
            method: [run.record for run in runs.values() if run.record.get("gates")]
            for method, runs in self.finals.items()
        }
        for value, seeds in self.entropy.items():
            label = f"{self.spec.entropy_sweep.method} λ={value:g}"
            settings[label] = [record for record in seeds.values() if record.get("gates")]
        settings = {label: records for label, records in settings.items() if records}
        if settings:
            self.figures[f"{self.prefix}prefill_decode.png"] = prefill_decode_figure(settings)
            lines.append(
                f"![mean gates: prompt vs response, prefill vs decode]({self.prefix}prefill_decode.png)"
            )
        histograms = {}
        for value, seeds in self.entropy.items():
            record = next(
                (record for record in seeds.values() if (record.get("gates") or {}).get("histogram")), None
            )
            if record is not None:
                histograms[f"λ = {value:g} (seed {record['seed']})"] = record["gates"]["histogram"]
        if histograms:
            self.figures[f"{self.prefix}gate_histograms.png"] = entropy_histogram_figure(histograms)
            lines.append(f"![gate histograms by entropy weight]({self.prefix}gate_histograms.png)")
        for value, seeds in self.entropy.items():
            record = next(
                (record for record in seeds.values() if (record.get("gates") or {}).get("probe")), None
            )
            if record is not None:
                name = f"{self.prefix}gate_heatmap_lambda{value:g}.png"
                title = f"{record['method']} λ={value:g} seed {record['seed']}, layer x token gates"
                self.figures[name] = heatmap_figure(record["gates"]["probe"], title)
                lines.append(f"![probe gate heatmap, lambda {value:g}]({name})")
        if not self.entropy:  # no entropy sweep recorded: a heatmap of a final gated run instead
            for method, runs in self.finals.items():
                run = next(
                    (run for run in runs.values() if (run.record.get("gates") or {}).get("probe")), None
                )
                if run is not None:
                    name = f"{self.prefix}gate_heatmap_{method}.png"
                    self.figures[name] = heatmap_figure(
                        run.record["gates"]["probe"], f"{method} seed {run.run.seed}"
                    )
                    lines.append(f"![probe gate heatmap, {method}]({name})")
                    break
        return "\n\n".join(lines) + "\n" if lines else "No gated run with gate statistics is recorded yet.\n"

    # ------------------------------------------------------------------ budget, machine, commands, missing
    def budget(self) -> str:
        c = self.config
        method = get_path(c, "model.method.init_args") or {}
        tasks = get_path(c, "data.init_args.tasks") or list(COMMONSENSE_COLUMNS)
        cap, val = get_path(c, "data.init_args.per_task_cap"), get_path(c, "data.init_args.val_size") or 0
        steps, batch = get_path(c, "trainer.max_steps"), get_path(c, "data.init_args.batch_size")
        accumulate = get_path(c, "trainer.accumulate_grad_batches") or 1
        rows = f"{len(tasks) * cap - val}" if isinstance(cap, int) else "all"
        seen = steps * batch * accumulate if isinstance(steps, int) and isinstance(batch, int) else "?"
        limit = get_path(c, "data.init_args.test_limit")
        facts = [
            f"base model `{get_path(c, 'model.model')}` ({get_path(c, 'model.dtype')}), rank {method.get('r')} "
            f"(alpha {method.get('alpha')}) on {', '.join(method.get('target_modules') or [])}",
            f"training data: {cap} rows from each of the {len(tasks)} train sets (data seed "
            f"{get_path(c, 'data.init_args.seed')}), {val} of the pooled rows held out for validation, "
            f"{rows} training rows; the same rows, in the same order (the data seed also draws the "
            "shuffling), for every method and seed, so a run's seed (`seed_everything`) changes only the "
            "adapter's random initialisation (and dropout, where a config has it)",
            f"{steps} optimizer steps of {batch} sequences of at most {get_path(c, 'data.init_args.max_length')} "
            f"tokens (gradient accumulation {accumulate}; {seen} sequences seen), warm-up "
            f"{get_path(c, 'model.warmup_steps')} steps, {get_path(c, 'model.lr_schedule')} decay, loss on "
            f"{get_path(c, 'model.loss_on')} tokens",
            f"test: the first {limit if limit is not None else 'all'} rows of each test set "
            f"({get_path(c, 'model.eval_protocol')} protocol: argmax of the candidate labels' log-likelihood)",
            "learning-rate grids: "
            + "; ".join(
                f"{f.name} {', '.join(f'{r:g}' for r in f.learning_rates)}" for f in self.spec.families
            )
            + f" (search seed {self.spec.search_seed}); final seeds {', '.join(str(s) for s in self.spec.seeds)}",
        ]
        if self.spec.entropy_sweep:
            sweep = self.spec.entropy_sweep
            facts.append(
                f"entropy sweep: {sweep.method} at lambda {', '.join(f'{v:g}' for v in sweep.values)} "
                f"(seeds {', '.join(str(s) for s in sweep.seeds)}); the headline {sweep.method} uses its config's "
                f"lambda {get_path(self.plan_config(sweep.method), 'model.method.init_args.entropy_weight')}"
            )
        text = "\n".join(f"- {fact}" for fact in facts)
        return text + (f"\n\nFrom the sweep file: {self.spec.budget}\n" if self.spec.budget else "\n")

    def plan_config(self, method: str) -> dict[str, Any]:
        """The resolved config of ``method``'s final run, else of any of its planned runs (the search)."""
        runs = [run for run in self.plan.runs if run.method == method]
        run = next((run for run in runs if "final" in run.phases), runs[0] if runs else None)
        return run.resolved if run else {}

    def machine_and_time(self) -> str:
        machines: dict[str, int] = {}
        fit_seconds = test_seconds = 0.0
        per_method: dict[str, list[float]] = {}
        for record in self.recorded():
            machines[describe(record.get("machine"))] = machines.get(describe(record.get("machine")), 0) + 1
            fit = record.get("fit") or {}
            fit_seconds += fit.get("wall_seconds") or 0.0
            test_seconds += (record.get("test") or {}).get("wall_seconds") or 0.0
            if fit.get("wall_seconds"):
                per_method.setdefault(record["method"], []).append(fit["wall_seconds"])
        lines = [f"- {text}: {count} run(s)" for text, count in machines.items()] or ["- no run recorded yet"]
        lines.append(
            f"- compute recorded: {fit_seconds / 3600:.2f} h of training, {test_seconds / 3600:.2f} h of testing"
        )
        for method, seconds in per_method.items():
            lines.append(
                f"- {method}: {sum(seconds) / len(seconds) / 60:.1f} min per training run ({len(seconds)} runs)"
            )
        return "\n".join(lines) + "\n"

    def recorded(self) -> list[dict[str, Any]]:
        names = {run.name for run in self.plan.runs}
        return [record for name, record in self.records.items() if name in names]

    def commands(self, report_command: str) -> str:
        sweeps = sorted({(record.get("sweep") or {}).get("command") for record in self.recorded()} - {None})
        lines = ["Sweep (as run):", "", "```"]
        lines += sweeps or [f"gatera-lab sweep --sweep {self.spec.path}"]
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
        for record in self.recorded():
            for stage in ("fit", "test"):
                command = (record.get("commands") or {}).get(stage)
                if command:
                    lines.append(command)
        lines += ["```", "", "</details>"]
        return "\n".join(lines) + "\n"

    def missing(self) -> str:
        lines = []
        for run in self.plan.runs:
            status = run_status(run, self.records.get(run.name))
            if status != "done":
                need = (
                    "test"
                    if status == "needs_test"
                    else ("test" if run.kind == "zero_shot" else "fit + test" if run.needs_test else "fit")
                )
                lines.append(f"- `{run.name}` ({'+'.join(run.phases)}): needs {need}")
        lines += [f"- {group.describe()}" for group in self.plan.waiting]
        extra = sorted(set(self.records) - {run.name for run in self.plan.runs})
        if extra:
            lines.append(
                f"- ({len(extra)} record(s) in the folder belong to no run of this plan and are not shown)"
            )
        return "\n".join(lines) + "\n" if lines else "None: every run of the sweep is recorded.\n"


def build_report(
    spec: SweepSpec,
    plan: Plan,
    records: dict[str, dict[str, Any]],
    report_command: str,
    figure_prefix: str = "results_",
    majority: dict[str, float] | None = None,
) -> Report:
    """The page of ``spec`` from ``plan`` and ``records``; pictures are named ``<figure_prefix>*.png``.

    ``majority`` (`majority_label_accuracy` of the test subset) adds the majority-label baseline row.
    """
    builder = _Builder(spec, plan, records, figure_prefix, majority)
    done = sum(run_status(run, records.get(run.name)) == "done" for run in plan.runs)
    test = builder.config
    limit = get_path(test, "data.init_args.test_limit")
    sections = [
        f"# Results: sweep `{spec.name}`\n",
        f"Rebuilt by `{report_command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} from the records "
        f"({done} of {len(plan.runs)} named runs complete, {len(plan.waiting)} group(s) not named yet). "
        f"Sweep file: `{spec.path}`.\n",
        "## What was and was not reproduced\n",
        "\n".join(f"- {line}" for line in builder.claims()) + "\n",
        "Verdict rule: a difference is *reproduced* when it has the paper's sign and exceeds twice its combined "
        "standard error (seed spread and test-subset sampling), *contradicted* when it has the opposite sign "
        "beyond that, and *not resolved at this scale* otherwise.\n",
        "## Test accuracy (%)\n",
        f"Mean ± sample std over seeds. Test subset: the first {limit} rows of each test set, label "
        "log-likelihood protocol (not the papers' generation protocol). The zero-shot row is the "
        f"`{spec.zero_shot}` config tested untrained (its adapter starts as the identity: the base model). "
        "The majority-label row answers every row of a task with that task's most common gold label in the "
        "subset: a model that learned only the label format and one preferred label scores about this.\n",
        builder.accuracy_table(),
        f"## Published reference ({PUBLISHED_SOURCE})\n",
        builder.published_table(),
        "## Learning rate of each family (validation split, never a test set)\n",
        builder.learning_rate_tables(),
        "## Entropy weight (lambda) sweep\n",
        "Validation and test accuracy in %, gate statistics at the end of training on held-out rows "
        "(prompt / response tokens) and on the probe generation (prefill / decode passes).\n",
        builder.entropy_table(),
        "## Gates at the end of training (final runs)\n",
        builder.gate_table(),
        "## Pictures\n",
        builder.pictures(),
        "## Budget\n",
        builder.budget(),
        "## Machine and time\n",
        builder.machine_and_time(),
        "## Commands\n",
        builder.commands(report_command),
        "## Runs still missing\n",
        builder.missing(),
    ]
    return Report("\n".join(sections), builder.figures)
