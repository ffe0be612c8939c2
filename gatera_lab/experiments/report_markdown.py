"""The results page (Markdown) of a sweep, computed from its plan, records and claims; pictures beside it.

Sections: what was and was not reproduced (`report_claims`), the test table (zero-shot row, each method's
``mean ± std`` over seeds), the published rows, the learning-rate choice of each family, the entropy-weight
sweep, the gate statistics (`report_tables`), the pictures (`report_pictures`), the budget, the machine and
time, the exact commands, and the runs still missing (`report_facts`). Every number is read from a record;
the claims and published rows come from the claims file (`claims_file`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure

from gatera_lab.experiments.claims_file import ClaimsSpec
from gatera_lab.experiments.plan import Plan, run_status
from gatera_lab.experiments.report_claims import claims as claim_lines
from gatera_lab.experiments.report_data import report_data
from gatera_lab.experiments.report_facts import budget, commands, machine_and_time, missing
from gatera_lab.experiments.report_pictures import pictures
from gatera_lab.experiments.report_tables import (
    accuracy_table,
    entropy_table,
    gate_table,
    learning_rate_tables,
    published_table,
)
from gatera_lab.experiments.run_config import get_path
from gatera_lab.experiments.sweep_file import SweepSpec

VERDICT_RULE = (
    "Verdict rule: a difference is *reproduced* when it has the paper's sign and exceeds twice its combined "
    "standard error (seed spread and test-subset sampling), *contradicted* when it has the opposite sign "
    "beyond that, and *not resolved at this scale* otherwise.\n"
)


@dataclass
class Report:
    """The page's Markdown and its pictures by file name."""

    markdown: str
    figures: dict[str, Figure] = field(default_factory=dict)


def build_report(
    spec: SweepSpec,
    plan: Plan,
    records: dict[str, dict[str, Any]],
    report_command: str,
    figure_prefix: str = "results_",
    majority: dict[str, float] | None = None,
    claims: ClaimsSpec | None = None,
) -> Report:
    """The page of ``spec`` from ``plan`` and ``records``; pictures are named ``<figure_prefix>*.png``.

    ``majority`` (`majority_label_accuracy` of the test subset) adds the majority-label baseline row;
    ``claims`` (`load_claims`) the claims checked and the published rows.
    """
    claims = claims or ClaimsSpec()
    data = report_data(spec, plan, records, figure_prefix, majority, claims)
    done = sum(run_status(run, records.get(run.name)) == "done" for run in plan.runs)
    limit = get_path(data.config, "data.init_args.test_limit")
    picture_text, figures = pictures(data)
    sections = [
        f"# Results: sweep `{spec.name}`\n",
        f"Rebuilt by `{report_command}` on {time.strftime('%Y-%m-%d %H:%M %Z')} from the records "
        f"({done} of {len(plan.runs)} named runs complete, {len(plan.waiting)} group(s) not named yet). "
        f"Sweep file: `{spec.path}`.\n",
        "## What was and was not reproduced\n",
        "\n".join(f"- {line}" for line in claim_lines(data)) + "\n",
        VERDICT_RULE,
        "## Test accuracy (%)\n",
        f"Mean ± sample std over seeds. Test subset: the first {limit} rows of each test set, label "
        "log-likelihood protocol (not the papers' generation protocol). The zero-shot row is the "
        f"`{spec.zero_shot}` config tested untrained (its adapter starts as the identity: the base model). "
        "The majority-label row answers every row of a task with that task's most common gold label in the "
        "subset: a model that learned only the label format and one preferred label scores about this.\n",
        accuracy_table(data),
        f"## Published reference ({claims.published.source})\n",
        published_table(data),
        "## Learning rate of each family (validation split, never a test set)\n",
        learning_rate_tables(data),
        "## Entropy weight (lambda) sweep\n",
        "Validation and test accuracy in %, gate statistics at the end of training on held-out rows "
        "(prompt / response tokens) and on the probe generation (prefill / decode passes).\n",
        entropy_table(data),
        "## Gates at the end of training (final runs)\n",
        gate_table(data),
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
    return Report("\n".join(sections), figures)
