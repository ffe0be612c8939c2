"""Where a run writes its files, found without a collective operation.

``Trainer.log_dir`` broadcasts from rank 0 under DDP, so calling it on rank 0 alone (to write a file there)
leaves the other ranks out of the collective and breaks the next one. This asks the logger directly.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L


def run_folder(trainer: L.Trainer) -> Path:
    """The logger's folder for this run (``lightning_logs/version_N``), else ``default_root_dir``."""
    logger = trainer.logger
    log_dir = getattr(logger, "log_dir", None) if logger is not None else None
    return Path(log_dir or trainer.default_root_dir)
