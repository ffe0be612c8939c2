"""`DurableCheckpointIO`: every run of the CLI writes its checkpoints atomically and fsynced."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gatera_lab.cli import main
from gatera_lab.io import atomic_write
from gatera_lab.io.durable_checkpoint_io import DurableCheckpointIO, use_durable_checkpoints
from tests.helpers.tiny_cli_args import tiny_overrides


def test_a_real_fit_writes_its_checkpoint_through_the_durable_writer(
    tiny_model_dir, instruction_file, tmp_path, monkeypatch
):
    saved, synced = [], []
    real_save, real_fsync = DurableCheckpointIO.save_checkpoint, atomic_write.fsync_file

    def recording_save(self, checkpoint, path, storage_options=None):
        saved.append(Path(path))
        real_save(self, checkpoint, path, storage_options)

    def recording_fsync(path):
        synced.append(Path(path))
        real_fsync(path)

    monkeypatch.setattr(DurableCheckpointIO, "save_checkpoint", recording_save)
    monkeypatch.setattr(atomic_write, "fsync_file", recording_fsync)
    arguments = [
        "fit",
        "--config",
        "configs/lora_gate.yaml",
        *tiny_overrides(tiny_model_dir, instruction_file, tmp_path),
    ]
    assert main([*arguments, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0"]) == 0

    (checkpoint,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    assert saved == [checkpoint]
    assert any(
        path.parent == checkpoint.parent and path.name.startswith(f".{checkpoint.name}.") for path in synced
    )
    assert [path.name for path in checkpoint.parent.iterdir()] == [checkpoint.name]
    content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert content["global_step"] == 1 and "gatera" in content


def test_a_configured_checkpoint_io_is_kept():
    class MyCheckpointIO(TorchCheckpointIO):
        pass

    default = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    use_durable_checkpoints(default)
    assert type(default.strategy.checkpoint_io) is DurableCheckpointIO
    mine = L.Trainer(plugins=[MyCheckpointIO()], logger=False, enable_progress_bar=False)
    use_durable_checkpoints(mine)
    assert type(mine.strategy.checkpoint_io) is MyCheckpointIO
