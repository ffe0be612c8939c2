"""The command-line options that point a ``gatera-lab fit`` at the tiny model and data (shared by tests)."""

from __future__ import annotations

from pathlib import Path

import yaml


def tiny_model_args(model_dir, small_rank: bool = True) -> list[str]:
    """The tiny model, with adapters of rank 4 unless ``small_rank`` is false."""
    rank = ["--model.method.init_args.r", "4"] if small_rank else []
    return ["--model.model", str(model_dir), *rank]


def tiny_overrides(model_dir, instruction_file, root, small_rank: bool = True) -> list[str]:
    """The tiny model on ``instruction_file`` (4 validation rows, batches of 4, 96 tokens), logs in ``root``."""
    return [
        *tiny_model_args(model_dir, small_rank),
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


def method_yaml_args(model_dir, instruction_file, root, class_path: str, init_args: dict) -> list[str]:
    """``fit`` of configs/lora.yaml overlaid by a user's YAML file (in ``root``) naming the method
    ``class_path`` with ``init_args``, at the method's own rank, on the tiny model and data."""
    config = Path(root) / "method.yaml"
    config.write_text(
        yaml.safe_dump({"model": {"method": {"class_path": class_path, "init_args": init_args}}})
    )
    tiny = tiny_overrides(model_dir, instruction_file, root, small_rank=False)
    return ["fit", "--config", "configs/lora.yaml", "--config", str(config), *tiny]
