"""The eight commonsense tasks of LLM-Adapters (used by DoRA, HiRA and GateRA), defined once.

`COMMONSENSE_COLUMNS` maps each task's canonical name (the LLM-Adapters folder name, lower case) to its column
in the results table, in the table's order. Everything else that names the tasks builds on it: the results
table (`gatera_lab.evaluation.results_table`), the data's task specs (`gatera_lab.datamodules.commonsense_examples`
adds each task's labels, choices and source folders) and the study harness. It sits in the evaluation layer so
that both the evaluation and the data layers above it can import it.
"""

from __future__ import annotations

COMMONSENSE_COLUMNS: dict[str, str] = {
    "boolq": "BoolQ",
    "piqa": "PIQA",
    "social_i_qa": "SIQA",
    "hellaswag": "HellaSwag",
    "winogrande": "WinoGrande",
    "arc_easy": "ARC-e",
    "arc_challenge": "ARC-c",
    "openbookqa": "OBQA",
}
COMMONSENSE_TASK_NAMES: tuple[str, ...] = tuple(
    COMMONSENSE_COLUMNS
)  # the column order of every results table
