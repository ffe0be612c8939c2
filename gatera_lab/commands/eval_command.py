"""``gatera-lab eval``: lm-evaluation-harness tasks on a trained adapter (gated ones included) or a base model.

    gatera-lab eval --ckpt CKPT --tasks hellaswag,arc_easy [--limit 100] [--batch-size 8] [--output results.json]
    gatera-lab eval --ckpt CKPT --base --tasks my_task --include-path my_tasks/   # the same base, no adapter
    gatera-lab eval --base-model smollm2-135m-instruct --tasks my_task --include-path my_tasks/

The model is loaded as ``gatera-lab generate`` loads it: the base model with the checkpoint's adapter
(`gatera_lab.export.checkpoint_adapter.load_for_inference`, ``--base-model`` replacing the recorded
base), or the base model alone (``--base``: the checkpoint's recorded base in its training dtype, or
``--base-model``). lm-eval
runs on it in memory through `gatera_lab.evaluation.lm_eval_bridge.AdaptedModelLM`, so a gated adapter's gates
act on every scored and generated token.

Tasks are lm-eval's (``lm_eval --tasks list``) and those of the YAML files under ``--include-path`` (a task
reading local data: ``dataset_path: json`` with ``dataset_kwargs: {data_files: ...}``); when every named
task is found there, lm-eval's own task folders are not indexed (several seconds). With
``HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1`` nothing is fetched. The results table is printed;
``--output FILE.json`` writes lm-eval's results (with ``--log-samples`` each row's requests and responses).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from torch import nn

from gatera_lab.commands.command_entry import add_base_model_option, run_command, write_output
from gatera_lab.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatera-lab eval",
        description="Run lm-evaluation-harness tasks on a trained adapter checkpoint, or on a base model.",
    )
    parser.add_argument("--ckpt", help="a checkpoint written by a gatera-lab fit (adapter only)")
    add_base_model_option(parser, alone=True)
    parser.add_argument(
        "--base",
        action="store_true",
        help="evaluate the base model without the adapter (the checkpoint's base)",
    )
    parser.add_argument("--tasks", required=True, help="comma-separated lm-eval task or group names")
    parser.add_argument("--include-path", help="a folder of extra task YAML files")
    parser.add_argument("--limit", type=int, help="evaluate only the first N rows of each task")
    parser.add_argument("--num-fewshot", type=int, help="few-shot examples per prompt (default: the task's)")
    parser.add_argument("--batch-size", type=int, default=8, help="requests per forward (8)")
    parser.add_argument("--max-length", type=int, help="the most tokens per forward (default: the model's)")
    parser.add_argument("--output", help="write lm-eval's results to this JSON file")
    parser.add_argument("--log-samples", action="store_true", help="with --output: also every row's outputs")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser


def check_options(args: argparse.Namespace) -> list[str]:
    """The task names of ``--tasks``, after checking the other options (before anything loads)."""
    for option, value, least in [
        ("--batch-size", args.batch_size, 1),
        ("--limit", args.limit, 1),
        ("--num-fewshot", args.num_fewshot, 0),
        ("--max-length", args.max_length, 1),
    ]:
        if value is not None and value < least:
            raise ConfigError(f"option {option} must be >= {least}, got {value}")
    if args.ckpt is None and args.base_model is None:
        raise ConfigError(
            "give --ckpt CHECKPOINT (a trained adapter) or --base-model NAME (the base model alone)"
        )
    if args.ckpt is not None and not Path(args.ckpt).is_file():
        raise ConfigError(f"option --ckpt: {args.ckpt!r}: checkpoint does not exist")
    if args.log_samples and args.output is None:
        raise ConfigError("option --log-samples needs --output FILE.json")
    if args.include_path is not None and not Path(args.include_path).is_dir():
        raise ConfigError(f"option --include-path: {args.include_path!r} is not a folder")
    names = [name.strip() for name in args.tasks.split(",") if name.strip()]
    if not names:
        raise ConfigError("option --tasks: no task names (give e.g. --tasks hellaswag,arc_easy)")
    return names


def load_model(args: argparse.Namespace) -> tuple[nn.Module, Any, dict[str, Any]]:
    """``(model, tokenizer, description)``: the ``--ckpt`` adapter on its base, or a base model alone."""
    from gatera_lab.export.checkpoint_adapter import load_for_inference

    loaded = load_for_inference(
        args.ckpt,
        args.base_model,
        with_adapter=not args.base,
        device=args.device,
        label=f"option --ckpt: {args.ckpt!r}",
    )
    description = {"checkpoint": args.ckpt, "base_model": loaded.base_model, "adapter": loaded.method_name}
    return loaded.model, loaded.tokenizer, description


def load_tasks(names: list[str], include_path: str | None) -> tuple[Any, list[Any]]:
    """``(task_manager, tasks)``: lm-eval's task or group objects of ``names`` (data read), or a `ConfigError`.

    Only ``include_path`` is indexed when it holds every name; otherwise lm-eval's own tasks are as well.
    """
    from lm_eval.tasks import TaskManager

    local = TaskManager(include_path=include_path, include_defaults=False) if include_path else None
    manager = local if local is not None and set(names) <= set(local.all_tasks) else None
    manager = manager or TaskManager(include_path=include_path)
    unknown = [name for name in names if name not in manager.all_tasks]
    if unknown:
        where = (
            f"lm-eval's tasks or {include_path!r}" if include_path else "lm-eval's tasks (see --include-path)"
        )
        raise ConfigError(f"option --tasks: no task named {', '.join(map(repr, unknown))} in {where}")
    tasks = []
    for name in names:
        # a task's YAML and data files are user input, and lm-eval and datasets raise many types for them
        try:
            loaded = manager.load([name])
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"option --tasks: cannot load task {name!r}: {message}") from error
        group = loaded["groups"].get(name)  # a group keeps its subtasks; a tag is its tasks
        tasks += [group] if group is not None else list(loaded["tasks"].values())
    return manager, tasks


def results_table(results: dict[str, Any]) -> str:
    """One line per task (or group) and metric: ``task  metric  value  ± stderr``, and the rows evaluated.

    (lm-eval's own ``make_table`` needs a recent pytablewriter, which the pinned python-dateutil 4 rules out.)
    """
    lines = [("task", "metric", "value", "stderr", "rows")]
    for task, values in results["results"].items():
        rows = results.get("n-samples", {}).get(task, {}).get("effective", "")
        for key, value in values.items():
            metric, _, filter_name = key.partition(",")
            if not filter_name or "_stderr" in metric or not isinstance(value, int | float):
                continue
            stderr = values.get(f"{metric}_stderr,{filter_name}")
            name = metric if filter_name == "none" else f"{metric} ({filter_name})"
            error = f"{stderr:.4f}" if isinstance(stderr, int | float) else ""
            lines.append((values.get("alias", task), name, f"{value:.4f}", error, str(rows)))
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Evaluate; prints lm-eval's results table and returns its results (``samples`` per task included)."""
    names = check_options(args)
    manager, tasks = load_tasks(names, args.include_path)
    model, tokenizer, description = load_model(args)

    from lm_eval.evaluator import simple_evaluate
    from lm_eval.utils import handle_non_serializable

    from gatera_lab.evaluation.lm_eval_bridge import AdaptedModelLM

    lm = AdaptedModelLM(model, tokenizer, batch_size=args.batch_size, max_length=args.max_length)
    results = simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=args.num_fewshot,
        limit=args.limit,
        batch_size=args.batch_size,
        device=args.device,
        log_samples=True,
        task_manager=manager,
    )
    results["gatera"] = description
    print(results_table(results), flush=True)
    if args.output is not None:
        payload = (
            results
            if args.log_samples
            else {key: value for key, value in results.items() if key != "samples"}
        )
        text = json.dumps(payload, indent=2, default=handle_non_serializable, ensure_ascii=False) + "\n"
        write_output("--output", args.output, text)
    return results


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab eval``; returns the exit status (2 on a bad option, task or checkpoint)."""
    return run_command("eval", build_parser(), run, argv)
