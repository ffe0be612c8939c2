"""Experiment runner: a sweep of real ``gatera-lab`` runs, one JSON record per run, and the results page.

A sweep file (``configs/sweeps/*.yaml``, typed dataclasses that `load_sweep` parses with jsonargparse) names
the method configs, a CLI overlay with the budget, the learning-rate grid of each method family, the seeds,
the entropy-weight values and the claims file (the papers' claims as data, `claims_file`).
`build_plan` expands it into runs, each identified by a hash of its effective (fully resolved) training
configuration; the final runs of a family wait until its learning rate has been chosen from the
validation accuracy of its grid (`choose_learning_rate`). ``gatera-lab sweep`` trains and tests what is not
recorded yet (`execute_run`: the CLI's Python API in-process or in a child process per run, results taken
from the trainer and the module), so a sweep continues across sessions;
``gatera-lab report`` rebuilds ``docs/results.md`` and its pictures from the records.

    gatera-lab sweep --sweep configs/sweeps/reproduction.yaml --dry-run
    gatera-lab sweep --sweep configs/sweeps/reproduction.yaml [--only NAME] [--budget-minutes 160]
    gatera-lab report --records results/records --out docs/results.md
"""

from gatera_lab.experiments.final_gates import FinalGateProbe
from gatera_lab.experiments.lr_selection import LearningRateChoice, choose_learning_rate
from gatera_lab.experiments.plan import Plan, PlannedRun, build_plan, run_status
from gatera_lab.experiments.records import load_records, read_record, write_record
from gatera_lab.experiments.sweep_file import SweepSpec, load_sweep

__all__ = [
    "FinalGateProbe",
    "LearningRateChoice",
    "Plan",
    "PlannedRun",
    "SweepSpec",
    "build_plan",
    "choose_learning_rate",
    "load_records",
    "load_sweep",
    "read_record",
    "run_status",
    "write_record",
]
