"""``gatera-lab report``: rebuild the results page (Markdown) of a sweep from its records; pictures beside it.

    gatera-lab report --records results/study/records --out docs/results.md [--sweep configs/sweeps/study.yaml]

Sections: what was and was not reproduced (`report_claims`, and a picture of the intervals: `report_forest`),
the test table (zero-shot row, each method's ``mean ± std`` over seeds), each comparison task by task
(`report_task_differences`), the published rows, the learning-rate choice of each family, the entropy-weight
sweep, the gate statistics, the variants (`report_tables`), the pictures (`report_pictures`), the budget, the machine and
time, the exact commands, and the runs still missing (`report_facts`). Every number is read from a record;
the claims and published rows come from the claims file (`claims_file`). The page and its pictures
(``<out stem>_*.png``) are written atomically. The sweep file gives the plan; it defaults to the one named
in the records, else ``configs/sweeps/reproduction.yaml``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from matplotlib.figure import Figure

from gatera_lab.commands.command_entry import run_command
from gatera_lab.diagnostics.plotting import save_png
from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.experiments.claims import Comparison
from gatera_lab.experiments.claims_file import load_claims
from gatera_lab.experiments.majority_baseline import majority_label_accuracy
from gatera_lab.experiments.plan import build_plan, run_status
from gatera_lab.experiments.records import load_records
from gatera_lab.experiments.report_claims import claim_groups, claim_lines
from gatera_lab.experiments.report_data import ReportData, report_data
from gatera_lab.experiments.report_facts import (
    budget,
    commands,
    machine_and_time,
    missing,
    protocol,
    test_subset,
)
from gatera_lab.experiments.report_forest import forest_figure
from gatera_lab.experiments.report_pictures import pictures
from gatera_lab.experiments.report_tables import (
    accuracy_table,
    entropy_table,
    gate_skip_table,
    gate_table,
    learning_rate_tables,
    published_table,
    variant_table,
)
from gatera_lab.experiments.report_task_differences import task_difference_table
from gatera_lab.experiments.sweep_file import load_sweep
from gatera_lab.io.atomic_write import write_text_atomic

DEFAULT_SWEEP = "configs/sweeps/study.yaml"
VERDICT_RULE = (
    "Verdict rule: a difference is paired row by row (every run scores the same test rows) and seed by seed "
    "(a run's seed draws its training order, so both sides at one seed saw the same batches). Its standard "
    "error adds two parts: the seeds' (a paired t over the per-seed differences, S - 1 degrees of freedom) "
    "and the shared test rows' (the variance of the rows' mean, within tasks; it also holds some of the "
    "seed-by-row noise, so the sum is conservative). The 95% interval is the difference ± t_0.975 standard "
    "errors on the two parts' Welch-Satterthwaite degrees of freedom, and the minimum detectable difference "
    "is (t_0.975 + t_0.80) standard errors (5% level, 80% power); each claim states its t, degrees of "
    "freedom and both parts (`gatera_lab/evaluation/difference_interval.py`; `gatera-lab compare` uses the "
    "same rule). The verdict is *reproduced* when the interval lies on the claimed side of 0, *contradicted* "
    "when it lies on the other side, *smaller than the paper's effect* when it contains 0 but its upper end "
    "lies below the published difference, and *not resolved* otherwise. A claim over two seeds or fewer "
    "carries a caution: over one seed the interval covers the sampling of the rows only, not how much "
    "trainings with other seeds would differ; over two, the seed spread rests on one degree of freedom. "
    "Gate claims follow the same rule in gate units, paired by held-out row within each run (the runs in "
    "the seeds' place).\n\n"
    "What changed, and why: the intervals used to come from a bootstrap that redrew the seeds with "
    "replacement and took the 2.5th and 97.5th percentiles. Three seeds redrawn give only 10 distinct seed "
    "sets (3 of them one seed three times), which shrinks the seed variance by a third, and a percentile "
    "interval spans about 1.96 standard errors each way where a spread estimated from three seeds (2 degrees "
    "of freedom) calls for t = 4.30. The rule above states its degrees of freedom: they stay near S - 1 where "
    "the seeds disagree and grow toward the rows' where the seeds agree and the rows' part dominates.\n"
)
TOKEN_SHARE_TEXT = (
    "Token share: the part of the gates' variance on held-out tokens that lies across tokens within a module "
    "rather than across modules (`gatera_lab/diagnostics/token_variance.py`): 0 is a static switch per module "
    "(the GateRA paper's static-gate ablation), 1 a gate that depends on the token alone."
)


def variant_descriptions(data: ReportData) -> str:
    """Each variant of the sweep file: its description and exact overrides."""
    lines = [
        f"- `{variant.name}` ({', '.join(variant.methods)}; seeds {', '.join(map(str, variant.seeds))}): "
        f"{variant.description or 'no description'} Overrides: "
        + ", ".join(f"`{key}: {value}`" for key, value in variant.overrides.items())
        + "."
        for variant in data.spec.variant_list
    ]
    if not lines:
        return "The sweep file names no variant.\n"
    return (
        "\n".join(lines) + "\n\nTest average in % (mean ± std over the variant's seeds) beside the same "
        "method's finals of the same seeds; gate columns: the variant's mean (the finals' in brackets).\n"
    )


def build_report(data: ReportData, report_command: str) -> tuple[str, dict[str, Figure]]:
    """The page's Markdown and its pictures by file name (``<data.prefix>*.png``)."""
    spec, plan, records, claims = data.spec, data.plan, data.records, data.claims_spec
    done = sum(run_status(run, records.get(run.name)) == "done" for run in plan.runs)
    picture_text, figures = pictures(data)
    groups = claim_groups(data)
    forest = forest_figure(
        [
            claim
            for name in ("paper", "entropy", "variants")
            for claim in groups[name]
            if isinstance(claim, Comparison)
        ]
    )
    forest_text = ""
    if forest is not None:
        figures[f"{data.prefix}claims.png"] = forest
        forest_text = f"![the accuracy claims' differences and intervals]({data.prefix}claims.png)\n"
    sections = [
        f"# Results: sweep `{spec.name}`\n",
        f"Rebuilt by `{report_command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} from the records "
        f"({done} of {len(plan.runs)} named runs complete, {len(plan.waiting)} group(s) not named yet). "
        f"Sweep file: `{spec.path}`.\n",
        "## What was and was not reproduced\n",
        "\n".join(f"- {line}" for line in claim_lines(groups)) + "\n",
        forest_text,
        VERDICT_RULE,
        "## Test accuracy (%)\n",
        f"Mean ± sample std over seeds. Test rows: {test_subset(data.config)}; {protocol(data.config)}. "
        f"The zero-shot row is the `{spec.zero_shot}` config tested untrained (its adapter starts as the "
        "identity: the base model). The majority-label row answers every row of a task with that task's most "
        "common gold answer in the same rows: a model that learned only one preferred answer per task scores "
        "about this.\n",
        accuracy_table(data),
        "## Where the differences come from (per task)\n",
        "Each comparison of the first section, task by task: A minus B in points, mean over the seeds both "
        "sides have (plain means; a task holds one eighth of the paired rows, so its difference is roughly "
        "2.8 times as noisy as the average's, whose interval is above).\n",
        task_difference_table(data),
        f"## Published reference ({claims.published.source})\n",
        published_table(data),
        "## Learning rate of each family (validation split, never a test set)\n",
        learning_rate_tables(data),
        "## Entropy weight (lambda) sweep\n",
        "Validation and test accuracy in %, gate statistics at the end of training on held-out rows "
        "(prompt / response tokens) and on greedy continuations of held-out prompts (prefill / decode passes). "
        f"{TOKEN_SHARE_TEXT}\n",
        entropy_table(data),
        "## Gates before and after training (final runs)\n",
        "Step 0: the gates on the first training batch, before any update (the fit's gate trace, logged by "
        "`GateStatisticsMonitor`); the other columns: held-out rows after the last step (mean ± std over "
        "seeds). A gate g multiplies its adapter's output: gates that stay near their initial value act like "
        "a constant factor on the adapter's scale (LoRA's alpha), and with Adam's scale-free steps each step "
        f"then moves the model's output by about that factor less than the ungated method's. {TOKEN_SHARE_TEXT}\n",
        gate_table(data),
        "## Variants (the finals with one setting changed)\n",
        variant_descriptions(data),
        variant_table(data),
        "## Gate skipping (gated final runs)\n",
        gate_skip_table(data),
        "## Pictures\n",
        picture_text,
        "## Budget\n",
        budget(data),
        "## Machine and time\n",
        machine_and_time(data),
        "## Commands\n",
        commands(data, report_command),
        "## Runs still missing\n",
        missing(data),
    ]
    return "\n".join(sections), figures


def run_report(args: argparse.Namespace, argv: list[str]) -> Path:
    records_dir = Path(args.records)
    if not records_dir.is_dir():
        raise ConfigError(f"option --records: {str(records_dir)!r} is not a folder")
    records = load_records(records_dir)
    named = sorted({(record.get("sweep") or {}).get("file") for record in records.values()} - {None})
    if not args.sweep and len(named) > 1:
        raise ConfigError(f"the records come from several sweep files ({', '.join(named)}); pass --sweep")
    spec = load_sweep(args.sweep or (named[0] if named else DEFAULT_SWEEP))
    plan = build_plan(spec, records)
    out, template, majority = Path(args.out), plan.first_training_run(), None
    try:
        majority = majority_label_accuracy(template.resolved) if template else None
    except (GateraError, OSError) as error:  # the page is still useful without the baseline row
        print(
            f"gatera-lab report: no majority-label row, the test sets are not readable: {error}",
            file=sys.stderr,
        )
    command = shlex.join(["gatera-lab", "report", *argv])
    data = report_data(spec, plan, records, f"{out.stem}_", majority, load_claims(spec.claims))
    markdown, figures = build_report(data, command)
    for name, figure in figures.items():
        save_png(figure, out.parent / name)
    write_text_atomic(out, markdown)
    print(f"wrote {out} ({len(records)} records, {len(figures)} pictures)")
    return out


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab report``; returns the exit status (2 on a bad option or record)."""
    parser = argparse.ArgumentParser(prog="gatera-lab report", description=__doc__.splitlines()[0])
    parser.add_argument("--records", default="results/study/records", help="the records folder")
    parser.add_argument("--out", default="docs/results.md", help="the Markdown page to write")
    parser.add_argument("--sweep", default=None, help="the sweep file (default: the records' own)")
    return run_command("report", parser, lambda args: run_report(args, argv), argv)
