"""The study harness: a sweep of real ``gatera-lab`` runs, one JSON record per run, and the results page.

A sweep file (`sweep_file`) names the method configs, a budget overlay, each family's learning-rate grid,
the seeds, the entropy weights and the claims file. `build_plan` expands it into runs identified by a hash
of their resolved configuration; ``gatera-lab sweep`` (`command`) runs what is not recorded yet, so a sweep
continues across sessions; ``gatera-lab report`` (`report_command`) rebuilds ``docs/results.md``.
Nothing imports this package: the CLI reaches its commands by module path.
"""

from gatera_lab.experiments.lr_selection import LearningRateChoice, choose_learning_rate
from gatera_lab.experiments.plan import Plan, PlannedRun, build_plan, run_status
from gatera_lab.experiments.records import load_records, read_record, write_record
from gatera_lab.experiments.sweep_file import SweepSpec, load_sweep

__all__ = [
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
