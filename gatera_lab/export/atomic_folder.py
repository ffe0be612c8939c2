"""`atomic_folder`: write a whole folder so that readers see either the old one or the complete new one.

Files are written into a temporary sibling folder (``.NAME.tmp-XXXX`` beside ``NAME``). Once the block ends
without an error, every file in it is fsynced and the folder is renamed onto ``NAME``; an existing ``NAME`` is
swapped out in one step and deleted (`gatera_lab.io.atomic_write.install_dir_atomic`). A failure, or a process
killed before the rename, leaves the target as it was (absent, or the previous contents when overwriting);
a killed process leaves its hidden temporary folder behind, which nothing reads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from gatera_lab.errors import ConfigError
from gatera_lab.io.atomic_write import install_dir_atomic, make_dirs, make_tempdir, restore_interrupted_dir


@contextlib.contextmanager
def atomic_folder(
    out_dir: str | os.PathLike[str],
    overwrite: bool = False,
    replaceable: Callable[[Path], None] | None = None,
) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it becomes ``out_dir``.

    Args:
        out_dir: the final folder. Its parent is created if needed.
        overwrite: replace an existing non-empty ``out_dir`` (otherwise that is a `ConfigError`).
        replaceable: called with an existing non-empty ``out_dir`` before anything is written when
            ``overwrite`` is set; it raises to refuse the replacement (e.g.
            `gatera_lab.export.export_folder.require_adapter_export`). None replaces any folder.

    Raises:
        ConfigError: ``out_dir`` is a file, or a non-empty folder and ``overwrite`` is False.
    """
    target = Path(out_dir)
    restore_interrupted_dir(target)  # a crash between the two renames of a non-Linux replacement
    if target.exists() and not target.is_dir():
        raise ConfigError(f"output path {str(target)!r} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"output folder {str(target)!r} exists and is not empty; pass overwrite=True (--overwrite) "
                "to replace it"
            )
        if replaceable is not None:
            replaceable(target)
    make_dirs(target.parent)
    staging = make_tempdir(target.parent, f".{target.name}.tmp-", "")
    try:
        yield staging
        install_dir_atomic(staging, target, replace=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
