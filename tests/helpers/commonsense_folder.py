"""A tiny LLM-Adapters commonsense folder and the ``gatera-lab fit --test_after_fit`` that trains and tests on
it (shared by the DDP and FSDP2 tests)."""

from __future__ import annotations

import json
from pathlib import Path

from gatera_lab.datamodules.commonsense_tasks import CommonsenseExample
from tests.helpers.tiny_cli_args import tiny_model_args


def write_commonsense_folder(folder: Path) -> Path:
    """An LLM-Adapters folder: 12 training records, 5 BoolQ and 4 PIQA test rows (9: odd, so padding shows)."""

    def example(task: str, index: int) -> CommonsenseExample:
        if task == "boolq":
            return CommonsenseExample("boolq", f"is {index} even", ("true", "false"), index % 2)
        return CommonsenseExample("piqa", f"open jar {index}", (f"twist {index}", "push"), (index // 2) % 2)

    def records(task: str, rows: range) -> list[dict]:
        return [{k: v for k, v in example(task, i).to_record().items() if k != "task"} for i in rows]

    folder.mkdir(parents=True)
    (folder / "commonsense_170k.json").write_text(
        json.dumps(records("boolq", range(6)) + records("piqa", range(6)))
    )
    for task, rows in (("boolq", range(10, 15)), ("piqa", range(10, 14))):
        (folder / task).mkdir()
        (folder / task / "test.json").write_text(json.dumps(records(task, rows)))
    return folder


def fit_then_test_args(model_dir: Path, data_dir: Path, root: Path) -> list[str]:
    """One training step at learning rate 0 (the adapter stays as initialised), validation, then test."""
    args = ["fit", "--config", "configs/lora.yaml", *tiny_model_args(model_dir)]
    args += ["--model.learning_rate", "0", "--model.warmup_steps", "0"]
    args += [
        "--data.source",
        "llm_adapters",
        "--data.data_dir",
        str(data_dir),
        "--data.tasks",
        "[boolq, piqa]",
    ]
    args += ["--data.val_size", "5", "--data.batch_size", "2", "--data.eval_batch_size", "2"]
    args += ["--data.max_length", "96", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1"]
    args += ["--trainer.accumulate_grad_batches", "1", "--trainer.num_sanity_val_steps", "0"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root)]
    return [*args, "--test_after_fit", "true"]
