"""The process that tests/test_faults.py kills: it writes an old version, then stalls inside the new write.

    python -m tests.helpers.fault_child SCENARIO KILL_POINT WORK_DIR

SCENARIO is what is written under ``WORK_DIR``: ``checkpoint`` (``ckpt/last.ckpt`` through
`DurableCheckpointIO`), ``record`` (the sweep record ``records/run.json``) or ``export`` (the adapter folder
``adapter``, a LoRA export replaced by a hira_gate one; references of both are written to ``ref_old`` and
``ref_new``). The old version is written completely; then the child is armed to stall at KILL_POINT of the
new write, creates ``WORK_DIR/reached`` there and sleeps until the parent kills it:

- ``write``: mid-stream, half of the new content written to the temporary file;
- ``fsync``: the whole temporary file or folder written, at its first fsync (not renamed yet);
- ``replaced``: the file renamed into place, before its folder is fsynced;
- ``swapped``: the new folder swapped into place, before the old one is deleted;
- ``between``: Linux's one-step swap made unavailable, the old folder moved aside and the new one not yet in.

Everything patched here is patched in this child process only.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

STALL_AT = 256  # the first write of at least this many bytes or characters is cut in half
RECORD_NOTE = "x" * 400


def stall(work: Path) -> None:
    (work / "reached").touch()
    while True:
        time.sleep(60)


class StallingFile:
    """A file object that writes half of its first large write, flushes it and stalls."""

    def __init__(self, file: Any, work: Path) -> None:
        self._file, self._work = file, work

    def write(self, data: Any) -> int:
        if len(data) < STALL_AT:
            return self._file.write(data)
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        stall(self._work)
        return 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> StallingFile:
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._file.__exit__(*exc_info)


def arm(kill_point: str, work: Path) -> None:
    """Make the next write stall at ``kill_point``."""
    import gatera_lab.io.atomic_write as atomic_write

    real_fdopen, real_replace, replace_calls = os.fdopen, os.replace, []

    def stalling_fdopen(*args: Any, **kwargs: Any) -> Any:
        return StallingFile(real_fdopen(*args, **kwargs), work)

    def stalling_replace(*args: Any, **kwargs: Any) -> None:
        replace_calls.append(args)
        if kill_point == "between" and len(replace_calls) == 2:
            stall(work)  # the old folder is moved aside, the new one not renamed yet
        real_replace(*args, **kwargs)
        if kill_point == "replaced":
            stall(work)

    if kill_point == "write":
        os.fdopen = stalling_fdopen
        from safetensors.torch import save

        from gatera_lab.export import gatera_format

        def stalling_save_file(tensors: Any, filename: str, metadata: Any = None) -> None:
            data = save(tensors, metadata)
            Path(filename).write_bytes(data[: len(data) // 2])
            stall(work)

        gatera_format.save_file = stalling_save_file
    elif kill_point == "fsync":
        os.fsync = lambda handle: stall(work)
    elif kill_point in ("replaced", "between"):
        os.replace = stalling_replace
        if kill_point == "between":
            atomic_write.rename_exchange = lambda first, second: False
    elif kill_point == "swapped":
        shutil.rmtree = lambda *args, **kwargs: stall(work)
    else:
        raise SystemExit(f"unknown kill point {kill_point!r}")


def checkpoint_payload(version: int) -> dict[str, Any]:
    import torch

    return {"version": version, "state_dict": {"weight": torch.full((256, 1024), float(version))}}  # 1 MiB


def record_payload(version: int) -> dict[str, Any]:
    return {"name": "run", "kind": "train", "version": version, "note": RECORD_NOTE}


def export_pair() -> tuple[Any, Any]:
    """(old, new): a LoRA and a hira_gate adapter, each as ``(model, method)`` with fixed values."""
    from gatera_lab import build_method
    from tests.conftest import make_tiny_llama, randomize_adapters

    pairs = []
    for name in ("lora", "hira_gate"):
        model = make_tiny_llama()
        method = build_method(name, r=4, alpha=8, target_modules=["q_proj", "v_proj"])
        method.apply(model)
        randomize_adapters(model, seed=1, std=0.1)
        pairs.append((model, method))
    return pairs[0], pairs[1]


def main(scenario: str, kill_point: str, work: Path) -> int:
    if scenario == "checkpoint":
        from gatera_lab.io.durable_checkpoint_io import DurableCheckpointIO

        checkpoint_io, path = DurableCheckpointIO(), work / "ckpt" / "last.ckpt"
        checkpoint_io.save_checkpoint(checkpoint_payload(0), path)
        arm(kill_point, work)
        checkpoint_io.save_checkpoint(checkpoint_payload(1), path)
    elif scenario == "record":
        from gatera_lab.experiments.records import write_record

        write_record(work / "records", record_payload(0))
        arm(kill_point, work)
        write_record(work / "records", record_payload(1))
    elif scenario == "export":
        from gatera_lab.export import export_adapter

        old, new = export_pair()
        export_adapter(*old, work / "ref_old", "tiny")
        export_adapter(*new, work / "ref_new", "tiny")
        export_adapter(*old, work / "adapter", "tiny")
        arm(kill_point, work)
        export_adapter(*new, work / "adapter", "tiny", overwrite=True)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    return 3  # not reached: the parent kills this process at the kill point


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
