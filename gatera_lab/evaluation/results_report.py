"""What ``gatera-lab test`` prints and writes: the per-task accuracy table, as Markdown, JSON and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gatera_lab.evaluation.results_table import (
    COMMONSENSE_COLUMNS,
    render_table,
    write_results_csv,
    write_results_json,
)


def report_test_results(results: dict[str, Any], directory: str | Path) -> tuple[Path, Path]:
    """Print the table and write ``test_results.json`` and ``test_results.csv`` into ``directory``.

    Args:
        results: ``method``, ``model``, ``protocol``, ``accuracy`` ({task: fraction, "avg": mean})
            and ``counts`` ({task: (correct, total)}).
        directory: the run's log folder.
    """
    accuracies = {task: value for task, value in results["accuracy"].items() if task != "avg"}
    name = f"{results['method']} ({results['protocol']})"
    # the eight commonsense columns, or a user's own tasks under their own names
    columns = (
        COMMONSENSE_COLUMNS if set(accuracies) <= set(COMMONSENSE_COLUMNS) else {t: t for t in accuracies}
    )
    print(f"\nTest accuracy (%), {results['model']}:\n")
    print(render_table({name: accuracies}, columns=columns))
    directory = Path(directory)
    json_path = write_results_json(directory / "test_results.json", results)
    csv_path = write_results_csv(directory / "test_results.csv", {name: accuracies}, columns=columns)
    print(f"written: {json_path} and {csv_path}")
    return json_path, csv_path
