"""Fits of a method on the tiny model and instruction file, and two steps saved as a Lightning checkpoint
(shared by tests)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from gatera_lab import build_method
from gatera_lab.adapters.adapter_method import adapter_state_dict
from gatera_lab.datamodules import LLMAdaptersJSONDataModule
from gatera_lab.training.module import GateraModule

QUIET_TRAINER = dict(
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
    num_sanity_val_steps=0,
)


def tiny_data(model_dir: Path, instruction_file: Path, **options) -> LLMAdaptersJSONDataModule:
    """The instruction file with the tiny model's tokenizer: 4 validation rows, batches of 4, at most 96
    tokens (``options`` win)."""
    settings = {"val_size": 4, "batch_size": 4, "max_length": 96, **options}
    return LLMAdaptersJSONDataModule(str(instruction_file), tokenizer=str(model_dir), **settings)


def fit_tiny(
    module: GateraModule,
    model_dir: Path,
    instruction_file: Path,
    ckpt_path: Path | str | None = None,
    data_options: dict | None = None,
    **trainer_options,
) -> L.Trainer:
    """``module`` fitted on `tiny_data` by a Trainer that logs, checkpoints and prints nothing of its own and
    skips the sanity validation (``trainer_options`` win); the Trainer."""
    trainer = L.Trainer(**{**QUIET_TRAINER, **trainer_options})
    trainer.fit(module, tiny_data(model_dir, instruction_file, **(data_options or {})), ckpt_path=ckpt_path)
    return trainer


def fit_resumable(
    model_dir: Path,
    instruction_file: Path,
    root: Path,
    method: str,
    method_options: dict,
    callbacks: list[Callback],
    ckpt_path: Path | None = None,
    every_n_train_steps: int | None = None,
    data_options: dict | None = None,
    **trainer_options,
) -> L.Trainer:
    """Seed 7, then ``method`` (rank 4, alpha 8, ``method_options``) at learning rate 0.01 after 2 warm-up
    steps, fitted as `fit_tiny` with ``callbacks`` and a checkpoint in ``root`` (and ``last.ckpt``) every
    epoch, or every ``every_n_train_steps``; resumed from ``ckpt_path`` when given."""
    L.seed_everything(7)
    module = GateraModule(
        method=build_method(method, r=4, alpha=8, **method_options),
        model=str(model_dir),
        learning_rate=1e-2,
        warmup_steps=2,
    )
    checkpoints = ModelCheckpoint(dirpath=root, save_last=True, every_n_train_steps=every_n_train_steps)
    return fit_tiny(
        module,
        model_dir,
        instruction_file,
        ckpt_path,
        data_options,
        default_root_dir=root,
        enable_checkpointing=True,
        callbacks=[*callbacks, checkpoints],
        **trainer_options,
    )


def train_checkpoint(
    model_dir: Path, instruction_file: Path, path: Path, method: str, adapter_scale: float = 1.0
) -> tuple[Path, GateraModule]:
    """Fit ``method`` for two steps, multiply its adapter tensors by ``adapter_scale``, save to ``path``.

    A scale above 1 makes the adapter's effect visible on the tiny model (two steps barely move it).
    """
    L.seed_everything(0)
    module = GateraModule(
        method=build_method(method, r=4, gate_weight_init_std=0.3) if method.endswith("_gate") else method,
        model=str(model_dir),
        learning_rate=0.05,
        warmup_steps=0,
    )
    trainer = fit_tiny(module, model_dir, instruction_file, max_steps=2, limit_val_batches=0)
    if adapter_scale != 1.0:
        with torch.no_grad():
            for tensor in adapter_state_dict(module.model).values():
                tensor.mul_(adapter_scale)
    trainer.save_checkpoint(path)
    return path, module
