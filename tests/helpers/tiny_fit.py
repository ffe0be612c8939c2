"""Two optimizer steps of a method on the tiny model, saved as a Lightning checkpoint (shared by tests)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from gatera_lab import build_method
from gatera_lab.adapters.adapter_method import adapter_state_dict
from gatera_lab.datamodules import LLMAdaptersJSONDataModule
from gatera_lab.training.module import GateraModule


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
    data = LLMAdaptersJSONDataModule(
        str(instruction_file), tokenizer=str(model_dir), val_size=4, batch_size=4, max_length=96
    )
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    trainer.fit(module, data)
    if adapter_scale != 1.0:
        with torch.no_grad():
            for tensor in adapter_state_dict(module.model).values():
                tensor.mul_(adapter_scale)
    trainer.save_checkpoint(path)
    return path, module
