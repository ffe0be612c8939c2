"""Reading a checkpoint file that a user names, without letting the file run code.

A ``.ckpt`` is a pickle. Unpickled with ``torch.load(weights_only=False)``, it can name any importable
callable (``os.system``, ...) and have it called with arguments of its choosing while it loads, so a hostile
or altered checkpoint runs code. `load_checkpoint_file` unpickles with ``weights_only=True``: only tensors,
storages, plain containers (dict, list, tuple, OrderedDict), numbers, strings, bools, None and torch's own
allow-listed types are rebuilt; any other global is refused before it is called, and the refusal is an
`UnsafeCheckpointError` naming the file and the refused global.

Checkpoints written by ``GateraModule`` through Lightning hold only such values (the adapter tensors, the
``gatera`` metadata of strings, numbers and lists, RNG state tensors, the loops' and callbacks' counters,
optimizer and scheduler state dicts), so they load unchanged; Lightning itself loads ``--ckpt_path`` the
same way (torch's default since 2.6).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from gatera_lab.errors import ConfigError

_REFUSAL = "Weights only load failed"
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class UnsafeCheckpointError(ConfigError):
    """A checkpoint holds a Python object other than plain data, so it is refused unread."""


def load_checkpoint_file(path: str | os.PathLike[str], label: str | None = None) -> Any:
    """The unpickled content of the checkpoint at ``path``, loaded with ``weights_only=True`` onto the CPU.

    Args:
        path: the checkpoint file.
        label: how errors name the file (default: the path), e.g. ``"option --ckpt: 'x.ckpt'"``.

    Raises:
        UnsafeCheckpointError: the file holds a global that ``weights_only`` refuses (code, a class, ...).
        ConfigError: the file does not exist or is not a readable PyTorch checkpoint.
    """
    label = label or str(path)
    if not Path(path).is_file():
        raise ConfigError(f"{label}: checkpoint does not exist")
    with open(path, "rb") as file:
        first_byte = file.read(1)
    if not zipfile.is_zipfile(path) and first_byte != b"\x80":  # torch.save writes a zip, or else a pickle
        raise ConfigError(f"{label}: not a readable PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not str(error).startswith(_REFUSAL):
            raise ConfigError(f"{label}: not a readable PyTorch checkpoint ({error})") from error
        found = _GLOBAL.search(str(error))
        what = f"the global {found[1]!r}" if found else "a pickle instruction that is not plain data"
        raise UnsafeCheckpointError(
            f"{label}: refused to load the checkpoint: it holds {what}, which could run code while it is "
            "unpickled. gatera-lab reads checkpoints with torch.load(weights_only=True), which accepts only "
            "tensors and plain values (as GateraModule writes them); this file was written by something "
            "else or altered, so it is not read"
        ) from error
    except Exception as error:  # a truncated or foreign file: report it as the user's input
        raise ConfigError(
            f"{label}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from error
