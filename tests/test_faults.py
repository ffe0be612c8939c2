"""Faults while writing: a real process SIGKILLed mid-write, and a full disk during an export.

Each kill test runs tests/helpers/fault_child.py, which writes the old version of a checkpoint, a sweep record
or an adapter export completely, then stalls at a chosen point of writing the new version and signals it with a
marker file; the parent kills it with SIGKILL there. The next reader must find the old version intact or the
new one complete under the final name, never a partial one, and temporary leftovers must not disturb it.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gatera_lab.cli import main as cli_main
from gatera_lab.experiments.records import load_records, read_record
from gatera_lab.export import export_adapter, gatera_format, load_adapter
from gatera_lab.io.atomic_write import restore_interrupted_dir
from gatera_lab.io.durable_checkpoint_io import DurableCheckpointIO
from tests.conftest import make_tiny_llama
from tests.helpers.fault_child import RECORD_NOTE, export_pair

REPO = Path(__file__).resolve().parents[1]
MARKER_TIMEOUT_S = 300  # the child imports torch (and transformers) on a possibly loaded machine


def kill_at(scenario: str, kill_point: str, work: Path) -> None:
    """Run the child until it reaches ``kill_point``, then SIGKILL it."""
    work.mkdir(parents=True, exist_ok=True)
    log = work.parent / f"{work.name}.log"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tests.helpers.fault_child", scenario, kill_point, str(work)]
    with log.open("w") as output:
        child = subprocess.Popen(command, cwd=REPO, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + MARKER_TIMEOUT_S
            while not (work / "reached").exists():
                if child.poll() is not None:
                    pytest.fail(
                        f"the child exited ({child.returncode}) before {kill_point!r}:\n{log.read_text()}"
                    )
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"the child did not reach {kill_point!r} in {MARKER_TIMEOUT_S} s:\n{log.read_text()}"
                    )
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    (work / "reached").unlink()


def temporaries(folder: Path, name: str) -> list[str]:
    return [entry.name for entry in folder.iterdir() if entry.name.startswith(f".{name}.")]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {entry.name: entry.read_bytes() for entry in sorted(folder.iterdir())}


# ---------------------------------------------------------------------- (a) a checkpoint
@pytest.mark.parametrize(("kill_point", "expected"), [("write", 0), ("replaced", 1)])
def test_a_killed_checkpoint_write_leaves_the_old_or_the_complete_new_checkpoint(
    kill_point, expected, tmp_path
):
    kill_at("checkpoint", kill_point, tmp_path / "work")
    folder = tmp_path / "work" / "ckpt"
    loaded = DurableCheckpointIO().load_checkpoint(folder / "last.ckpt")
    assert loaded["version"] == expected
    assert torch.equal(loaded["state_dict"]["weight"], torch.full((256, 1024), float(expected)))
    assert [path.name for path in folder.glob("*.ckpt")] == ["last.ckpt"]  # the temporary file is hidden
    if kill_point != "replaced":
        (leftover,) = temporaries(folder, "last.ckpt")
        assert leftover.endswith(".tmp") and (folder / leftover).stat().st_size > 0  # killed mid-write


# ---------------------------------------------------------------------- (b) an export
@pytest.mark.parametrize(("kill_point", "expected"), [("write", "old"), ("fsync", "old"), ("swapped", "new")])
def test_a_killed_export_leaves_the_old_or_the_complete_new_folder(kill_point, expected, tmp_path):
    work = tmp_path / "work"
    kill_at("export", kill_point, work)
    assert folder_bytes(work / "adapter") == folder_bytes(work / f"ref_{expected}")
    assert load_adapter(make_tiny_llama(), work / "adapter").name == (
        "lora" if expected == "old" else "hira_gate"
    )
    assert temporaries(work, "adapter")  # the killed writer's staging (or the swapped-out old) folder is left


def test_an_export_killed_between_the_two_renames_of_the_fallback_is_restored(tmp_path):
    work = tmp_path / "work"
    kill_at("export", "between", work)  # without renameat2: the old folder moved aside, the new one not in
    assert not (work / "adapter").exists()
    assert restore_interrupted_dir(work / "adapter")
    assert folder_bytes(work / "adapter") == folder_bytes(work / "ref_old")
    export_adapter(*export_pair()[1], work / "adapter", "tiny", overwrite=True)  # the next export replaces it
    assert folder_bytes(work / "adapter") == folder_bytes(work / "ref_new")
    assert not [name for name in temporaries(work, "adapter") if ".old-" in name]


# ---------------------------------------------------------------------- (c) a sweep record
@pytest.mark.parametrize(("kill_point", "expected"), [("write", 0), ("replaced", 1)])
def test_a_killed_record_write_leaves_the_old_or_the_complete_new_record(kill_point, expected, tmp_path):
    kill_at("record", kill_point, tmp_path / "work")
    records = tmp_path / "work" / "records"
    record = read_record(records, "run")
    assert record["version"] == expected and record["note"] == RECORD_NOTE
    assert load_records(records) == {"run": record}  # a temporary leftover is not read as a record
    if kill_point == "write":
        assert temporaries(records, "run.json")


# ---------------------------------------------------------------------- (d) a full disk during an export
def test_a_full_disk_during_export_keeps_the_previous_export_and_is_a_clear_error(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    from tests.test_export import write_checkpoint

    write_checkpoint(tmp_path / "last.ckpt", tiny_model_dir, "lora_gate")
    out = tmp_path / "adapter"
    arguments = ["export", "--ckpt", str(tmp_path / "last.ckpt"), "--out", str(out), "--overwrite"]
    assert cli_main(arguments) == 0
    previous = folder_bytes(out)
    capsys.readouterr()

    def full_disk_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)  # part of the file went out before the disk filled up
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(gatera_format, "save_file", full_disk_save_file)
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err
    assert "gatera-lab export: error: could not write adapter folder" in error
    assert str(out) in error and "No space left on device" in error and "Traceback" not in error
    assert folder_bytes(out) == previous
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["adapter", "last.ckpt"]
