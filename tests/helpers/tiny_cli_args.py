"""The command-line options that point a ``gatera-lab fit`` at the tiny model and data (shared by tests)."""

from __future__ import annotations


def tiny_overrides(model_dir, instruction_file, root, small_rank: bool = True) -> list[str]:
    rank = ["--model.method.init_args.r", "4"] if small_rank else []
    return [
        "--model.model",
        str(model_dir),
        *rank,
        "--data",
        "gatera_lab.datamodules.LLMAdaptersJSONDataModule",
        "--data.train_file",
        str(instruction_file),
        "--data.val_size",
        "4",
        "--data.batch_size",
        "4",
        "--data.max_length",
        "96",
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
    ]
