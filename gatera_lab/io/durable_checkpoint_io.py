"""`DurableCheckpointIO`: Lightning checkpoints written atomically and durably (`gatera_lab.io.atomic_write`).

Lightning's `TorchCheckpointIO` writes a local checkpoint straight into its final name without ``fsync``: a
crash or power loss can leave a truncated or empty ``last.ckpt`` that the next ``--ckpt_path`` resume or
export cannot read. This plugin writes local checkpoints through a temporary file in the same folder that
is fsynced and then renamed into place (the folder fsynced too); remote (fsspec) paths keep Lightning's
own writer. `use_durable_checkpoints` installs it on a trainer that uses Lightning's default; ``GateraCLI``
does that for every run.
"""

from __future__ import annotations

from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch import Trainer
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gatera_lab.io.atomic_write import atomic_file


class DurableCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose local saves are atomic and fsynced; loading and removal are unchanged."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """``torch.save`` ``checkpoint`` to ``path``: the old file or the complete new one, never a partial one."""
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)  # remote, or Lightning's own error
            return
        with atomic_file(str(path).removeprefix("file://"), "wb") as file:
            torch.save(checkpoint, file)


def use_durable_checkpoints(trainer: Trainer) -> None:
    """Give ``trainer`` a `DurableCheckpointIO` unless it was configured with another kind of checkpoint IO."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = DurableCheckpointIO()
