"""`gatera_lab.io.atomic_write`: the order of fsync and rename, permissions, failures, folder swaps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gatera_lab.io import atomic_write
from gatera_lab.io.atomic_write import (
    atomic_file,
    install_dir_atomic,
    make_tempdir,
    restore_interrupted_dir,
    write_json_atomic,
    write_text_atomic,
)


def plain_file_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@pytest.fixture
def events(monkeypatch) -> list[tuple[str, str]]:
    """Every fsync of `atomic_write`, as ``("file"|"dir", path)``, in order."""
    recorded: list[tuple[str, str]] = []
    real_file, real_dir = atomic_write.fsync_file, atomic_write.fsync_dir

    def fsync_file(path):
        recorded.append(("file", os.fspath(path)))
        real_file(path)

    def fsync_dir(path):
        recorded.append(("dir", os.fspath(path)))
        real_dir(path)

    monkeypatch.setattr(atomic_write, "fsync_file", fsync_file)
    monkeypatch.setattr(atomic_write, "fsync_dir", fsync_dir)
    return recorded


def test_a_file_is_fsynced_under_its_temporary_name_then_renamed_then_its_folder_fsynced(tmp_path, events):
    path = tmp_path / "new" / "record.json"
    write_json_atomic(path, {"name": "run", "accuracy": 0.5})
    assert path.read_text() == '{\n  "name": "run",\n  "accuracy": 0.5\n}\n'
    assert (path.stat().st_mode & 0o777) == plain_file_mode()  # not mkstemp's 0600
    assert [kind for kind, _ in events] == ["dir", "file", "dir"]  # new/ in tmp_path, the file, new/
    assert events[0][1] == str(tmp_path)
    assert Path(events[1][1]).parent == path.parent and Path(events[1][1]).name.startswith(".record.json.")
    assert events[2][1] == str(path.parent)
    assert sorted(p.name for p in path.parent.iterdir()) == ["record.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "notes.txt"
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError, match="interrupted"), atomic_file(path, "w") as file:
        file.write("new, half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def filled_folder(parent: Path, name: str, files: dict[str, str]) -> Path:
    folder = make_tempdir(parent, f".{name}.tmp-", "")
    for file_name, text in files.items():
        (folder / file_name).write_text(text)
    return folder


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "fallback"])
def test_a_folder_replaces_the_old_one_after_every_file_in_it_is_fsynced(
    tmp_path, events, monkeypatch, exchange
):
    if not exchange:
        monkeypatch.setattr(atomic_write, "rename_exchange", lambda first, second: False)
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "old.txt").write_text("old")
    staging = filled_folder(tmp_path, "adapter", {"a.json": "{}", "b.bin": "data"})
    assert install_dir_atomic(staging, target, replace=True) == target
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.json": "{}", "b.bin": "data"}
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # neither staging nor the old folder is left
    synced = [(kind, Path(path).name) for kind, path in events]
    assert sorted(synced[:2]) == [("file", "a.json"), ("file", "b.bin")]
    assert synced[2] == ("dir", staging.name) and synced[3] == ("dir", tmp_path.name)


def test_without_replace_a_folder_that_another_process_finished_first_is_kept(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("first")
    staging = filled_folder(tmp_path, "model", {"config.json": "second"})
    install_dir_atomic(staging, target)
    assert (target / "config.json").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_folder_moved_aside_by_a_crash_is_restored(tmp_path):
    target = tmp_path / "adapter"
    backup = make_tempdir(tmp_path, ".adapter.old-", "")  # what the fallback's first rename leaves
    (backup / "adapter").mkdir()
    (backup / "adapter" / "adapter_config.json").write_text("{}")
    assert restore_interrupted_dir(target)
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    assert (target / "adapter_config.json").read_text() == "{}"
    assert not restore_interrupted_dir(target)  # nothing left to restore
