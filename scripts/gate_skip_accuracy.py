"""Accuracy, time and skipped fraction of a trained gated checkpoint with gate skipping at a few thresholds.

With ``gate_skip_threshold = tau`` every (layer, token) pair whose gate is below ``tau`` gets exactly the
base layer's output (`gatera_lab/adapters/gate_skip.py`). This script evaluates the same rows once per
threshold (log-likelihood protocol on the labels or, with ``--format choice_text``, the choices' texts; the
first ``--limit`` rows of each test set or a seeded ``--sample``) and prints, per threshold, the
average accuracy, its change against no skipping, the fraction of (layer, token) pairs skipped, and the time.

    python scripts/gate_skip_accuracy.py --ckpt results/runs/<run>/test/adapter.ckpt --limit 50 \\
        --thresholds 0.1,0.25,0.5 --output results/gate_skip_hira_gate.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from gatera_lab.adapters.gate_skip import evaluate_gate_skip
from gatera_lab.datamodules.commonsense_eval_items import eval_items_from_examples
from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES
from gatera_lab.datamodules.scored_rows import add_row_options, load_test_rows
from gatera_lab.evaluation import evaluate_items
from gatera_lab.evaluation.results_table import write_results_json
from gatera_lab.export.checkpoint_adapter import load_for_inference


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="a gated method's checkpoint (gatera-lab format)")
    add_row_options(parser, limit=50)
    parser.add_argument(
        "--thresholds", default="0.1,0.25,0.5", help="comma-separated gate thresholds in [0, 1]"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    return parser.parse_args(argv)


def parse_thresholds(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise SystemExit(
            f"option --thresholds: expected numbers separated by commas, got {text!r}"
        ) from error


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    thresholds = parse_thresholds(args.thresholds)
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = load_for_inference(args.ckpt, gated=True)
    model, tokenizer = loaded.model, loaded.tokenizer
    tasks = list(TASK_NAMES)
    examples, row_ids = load_test_rows(
        tasks, "olmo", limit=args.limit or None, sample=args.sample, sample_seed=args.sample_seed
    )
    items = eval_items_from_examples(
        examples, tokenizer, task_names=tasks, record_format=args.format, row_ids=row_ids
    )

    def accuracy(evaluated_model: torch.nn.Module) -> dict[str, float]:
        accuracies, _, _ = evaluate_items(
            evaluated_model, tokenizer, items, tasks, "likelihood", args.batch_size
        )
        return accuracies

    results = evaluate_gate_skip(model, accuracy, [None, *thresholds])
    reference = results[0].metric["avg"]
    rows = []
    print(f"{loaded.method_name} from {args.ckpt}; {len(items)} rows (first {args.limit} per task)")
    print("| threshold | Avg accuracy | change (points) | (layer, token) pairs skipped | seconds |")
    print("|---|---:|---:|---:|---:|")
    for result in results:
        average = result.metric["avg"]
        label = "off" if result.threshold is None else f"{result.threshold:g}"
        change = 100 * (average - reference)
        print(
            f"| {label} | {100 * average:.2f} | {change:+.2f} | {100 * result.skipped_fraction:.1f}% "
            f"| {result.seconds:.1f} |"
        )
        rows.append(
            {
                "threshold": result.threshold,
                "accuracy": result.metric,
                "change_points": change,
                "skipped_fraction": result.skipped_fraction,
                "seconds": result.seconds,
            }
        )
    if args.output:
        command = ["python", "scripts/gate_skip_accuracy.py", *(argv if argv is not None else sys.argv[1:])]
        payload = {"checkpoint": args.ckpt, "rows_per_task": args.limit, "results": rows}
        write_results_json(args.output, payload | {"command": " ".join(command)})
    return rows


if __name__ == "__main__":
    main()
