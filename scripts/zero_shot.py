"""Zero-shot accuracy of a causal LM on the eight commonsense test sets (a documented subset of rows).

The subset is the first ``--limit`` rows of each LLM-Adapters test set (the files' own order; all rows
with ``--limit 0``). Prints the results table and writes it as JSON and CSV.

    python scripts/zero_shot.py --limit 200 --output results/zero_shot_smollm2.json
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from gatera_lab.datamodules.commonsense_eval_items import eval_items_from_examples
from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES, resolve_task
from gatera_lab.datamodules.scored_rows import add_row_options, load_test_rows
from gatera_lab.evaluation import COMMONSENSE_COLUMNS, evaluate_items, render_table
from gatera_lab.evaluation.results_table import write_results_csv, write_results_json
from gatera_lab.evaluation.row_outcomes import metric_accuracies, row_outcomes
from gatera_lab.io.atomic_write import write_jsonl_atomic
from gatera_lab.models.model_loading import DEFAULT_MODEL, load_causal_lm, load_tokenizer, provenance


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="embedded name, Hugging Face id or local folder"
    )
    parser.add_argument(
        "--tasks", nargs="+", default=list(TASK_NAMES), help="tasks to evaluate (default: all 8)"
    )
    add_row_options(parser, limit=200)
    parser.add_argument("--protocol", choices=["likelihood", "generation"], default="likelihood")
    parser.add_argument("--num-beams", type=int, default=1, help="generation only (the papers use 4)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="generation only")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--source", choices=["olmo", "llm_adapters"], default="olmo")
    parser.add_argument(
        "--data-dir", default=None, help="llm_adapters source: local folder of <task>/test.json"
    )
    parser.add_argument(
        "--cache-dir", default=None, help="cache folder (default $GATERA_LAB_CACHE or ~/.cache)"
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 is fastest on busy cores)"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("results/zero_shot.json"), help="JSON; CSV next to it"
    )
    return parser.parse_args(argv)


def predicted_label_counts(outputs: list, tasks: list[str]) -> dict[str, dict[str, int]]:
    """Per task, how often each candidate index was predicted (``none``: no label in the response)."""
    counts: dict[str, Counter] = {task: Counter() for task in tasks}
    for output in outputs:
        for task_index, predicted in zip(output.task_index.tolist(), output.predicted.tolist(), strict=True):
            counts[tasks[task_index]]["none" if predicted < 0 else str(predicted + 1)] += 1
    return {task: dict(sorted(counter.items())) for task, counter in counts.items()}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    tasks = [resolve_task(task).name for task in args.tasks]
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load_causal_lm(args.model, dtype=args.dtype, cache_dir=args.cache_dir).to(args.device)
    tokenizer = load_tokenizer(args.model, cache_dir=args.cache_dir)
    load_seconds = time.perf_counter() - started
    limit = args.limit or None
    examples, row_ids = load_test_rows(
        tasks, args.source, args.cache_dir, args.data_dir, limit, args.sample, args.sample_seed
    )
    items = eval_items_from_examples(
        examples, tokenizer, task_names=tasks, record_format=args.format, row_ids=row_ids
    )
    print(f"{len(items)} rows of {len(tasks)} tasks; model loaded in {load_seconds:.1f} s", file=sys.stderr)

    def progress(done: int, total: int, seconds: float) -> None:
        print(f"\r{done}/{total} rows, {seconds:.0f} s", end="" if done < total else "\n", file=sys.stderr)

    options = (
        {"num_beams": args.num_beams, "max_new_tokens": args.max_new_tokens}
        if args.protocol == "generation"
        else {}
    )
    evaluation_started = time.perf_counter()
    accuracies, counts, outputs = evaluate_items(
        model, tokenizer, items, tasks, args.protocol, args.batch_size, progress=progress, **options
    )
    seconds = time.perf_counter() - evaluation_started
    rows = row_outcomes(outputs, tasks)
    print(f"{len(items) / seconds:.1f} rows per second", file=sys.stderr)
    name = f"{args.model} ({args.protocol})"
    columns = {task: COMMONSENSE_COLUMNS[task] for task in COMMONSENSE_COLUMNS if task in tasks}
    print(render_table({name: accuracies}, columns=columns))
    payload = {
        "model": provenance(args.model, args.cache_dir),
        "protocol": args.protocol,
        "generation": options or None,
        "format": args.format,
        "subset": (
            f"seeded sample of {args.sample} rows per task (seed {args.sample_seed})"
            if args.sample
            else f"first {limit} rows of each test set"
            if limit
            else "all rows"
        ),
        "rows_per_second": round(len(items) / seconds, 2),
        "source": args.source,
        "dtype": args.dtype,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "tasks": {
            task: {"accuracy": accuracies[task], "correct": counts[task][0], "total": counts[task][1]}
            for task in tasks
        },
        "avg": accuracies["avg"],
        "predicted_label_counts": predicted_label_counts(outputs, tasks),
        "acc": metric_accuracies(rows, "acc") if args.protocol == "likelihood" else None,
        "acc_norm": metric_accuracies(rows, "acc_norm") if args.protocol == "likelihood" else None,
        "seconds": {"model_load": round(load_seconds, 1), "evaluation": round(seconds, 1)},
        "command": " ".join(
            ["python", "scripts/zero_shot.py", *(argv if argv is not None else sys.argv[1:])]
        ),
    }
    write_results_json(args.output, payload)
    write_results_csv(args.output.with_suffix(".csv"), {name: accuracies}, columns=columns)
    write_jsonl_atomic(args.output.with_suffix(".rows.jsonl"), rows)
    print(f"wrote {args.output} and {args.output.with_suffix('.csv')}", file=sys.stderr)
    return payload


if __name__ == "__main__":
    main()
