"""The checkpoint that a run's test loads: the trained one without hyper-parameters or optimizer state.

``gatera-lab test --ckpt_path CKPT`` (LightningCLI) parses the checkpoint's ``hyper_parameters`` back into
the test configuration, where they would override the planned test settings (``eval_protocol`` ...), and
`GateraModule`'s extra entries (``method_name``, ``method_hparams``) are no constructor arguments, so the
parse fails. The runner gives the CLI the full configuration itself and a copy of the checkpoint without
``hyper_parameters``, ``hparams_name``, ``optimizer_states`` and ``lr_schedulers`` (the test restores the
adapter tensors, the ``gatera`` metadata, which is checked against the rebuilt model, and the callbacks'
state only). The copy is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from gatera_lab.atomic_write import atomic_file
from gatera_lab.checkpoint_file import load_checkpoint_file
from gatera_lab.errors import ConfigError

DROPPED = ("hyper_parameters", "hparams_name", "optimizer_states", "lr_schedulers")


def write_test_checkpoint(checkpoint: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Write ``checkpoint`` without the `DROPPED` entries to ``target``; returns ``target``.

    The checkpoint is read with ``weights_only=True`` (`load_checkpoint_file`): one that holds anything but
    tensors and plain values is refused with an `UnsafeCheckpointError` naming it, and nothing is written.
    """
    target = Path(target)
    content = load_checkpoint_file(checkpoint)
    if not isinstance(content, dict):
        raise ConfigError(f"{checkpoint}: not a Lightning checkpoint (it holds a {type(content).__name__})")
    target.parent.mkdir(parents=True, exist_ok=True)
    for key in DROPPED:
        content.pop(key, None)
    with atomic_file(target, "wb") as file:
        torch.save(content, file)
    return target
