"""Atomic, durable writes: a file or folder is complete under its final name, or the old one is still there.

A crash, a SIGKILL or a power loss at any moment leaves under the final name either the previous content or
the complete new content, never a partial or empty one.

A file (`atomic_file`, `atomic_path`, `write_bytes_atomic`, `write_text_atomic`, `write_json_atomic`):

1. write a temporary file ``.NAME.XXXX.tmp`` in the same folder (`make_tempfile`, with a plain file's
   permissions ``0o666 & ~umask``, not mkstemp's 0600);
2. flush and ``os.fsync`` it, so its bytes are on disk before any name points at them;
3. ``os.replace`` it onto ``NAME`` (atomic on POSIX within one file system);
4. ``os.fsync`` the folder, so that the rename itself survives a power loss.

A folder (`install_dir_atomic`):

1. fill a temporary sibling folder (`make_tempdir`);
2. fsync every file and folder in it, bottom-up (`fsync_tree`);
3. rename it onto ``NAME``; an existing ``NAME`` is either kept (a concurrent writer finished first) or, with
   ``replace=True``, swapped with it in one step (Linux ``renameat2(RENAME_EXCHANGE)``). Where that call is
   unavailable, the old ``NAME`` is moved aside to ``.NAME.old-XXXX/NAME`` first; `restore_interrupted_dir`
   puts it back if a crash came between the two renames;
4. fsync the parent folder, then delete the old content.

A failure before step 3 removes the temporary file or folder and leaves ``NAME`` as it was. A process killed
before step 3 leaves a hidden temporary (``.NAME.XXXX.tmp`` or the staging folder) behind, which no reader
looks at. Folders created on the way (`make_dirs`) are made durable too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100
BACKUP_INFIX = ".old-"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_tempdir(parent: Path, prefix: str, suffix: str) -> Path:
    """A temporary folder in ``parent`` with the permissions of a plain ``mkdir`` (not 0700)."""
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix))
    folder.chmod(0o777 & ~_umask())
    return folder


def make_tempfile(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``(handle, name)`` of a new temporary file next to ``path``, with a plain file's permissions."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600 files
    return handle, temporary


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush the content of the file ``path`` to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush the entries of ``folder`` (names created, renamed or removed in it) to disk; POSIX only.

    File systems that cannot fsync a folder (EINVAL) are skipped: there a rename is as durable as it gets.
    """
    if os.name != "posix":
        return
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(handle)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under ``folder`` (bottom-up, ``folder`` last); symbolic links are skipped."""
    for root, _, files in os.walk(folder, topdown=False):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                fsync_file(path)
        fsync_dir(root)


def make_dirs(folder: Path) -> None:
    """``mkdir -p folder``, with every folder it creates made durable in its parent."""
    missing = []
    current = folder
    while not current.is_dir() and current.parent != current:
        missing.append(current)
        current = current.parent
    folder.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_dir(created.parent)


def install_file(temporary: str | os.PathLike[str], path: Path) -> None:
    """Steps 2-4 for a finished file ``temporary`` in ``path``'s folder: fsync, rename onto ``path``, fsync."""
    fsync_file(temporary)
    os.replace(temporary, path)
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """Yield the name of a temporary file to write by name; on success it becomes ``path``.

    For writers that take a file name (``torch.save(obj, name)``, safetensors' ``save_file``) or when the
    content must be checked before it is installed. The temporary file exists (empty) when yielded.
    """
    path = Path(path)
    make_dirs(path.parent)
    handle, temporary = make_tempfile(path, suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        install_file(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: Literal["wb", "w"] = "wb") -> Iterator[IO[Any]]:
    """Yield an open temporary file (binary ``"wb"`` or UTF-8 text ``"w"``); on success it becomes ``path``.

    Text is written as is (no newline translation). An exception inside the block removes the temporary
    file and leaves ``path`` as it was.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    make_dirs(path.parent)
    handle, temporary = make_tempfile(path)
    try:
        text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(handle, mode, **text) as file:
            yield file
        install_file(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_file(path, "wb") as file:
        file.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably."""
    with atomic_file(path, "w") as file:
        file.write(text)


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> None:
    """Write ``payload`` as indented JSON (non-ASCII kept) to ``path`` atomically and durably."""
    write_text_atomic(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[Any]) -> None:
    """Write one JSON document per line (``rows``) to ``path`` atomically."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc >= 2.28, musl
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
    return function


def rename_exchange(first: Path, second: Path) -> bool:
    """Swap the two existing paths in one atomic step; False where the system or file system cannot."""
    function = _renameat2()
    if function is None:
        return False
    if function(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(first), None, str(second))


def _swap_into_place(staging: Path, target: Path) -> Path:
    """Put ``staging`` at the existing ``target``; returns the folder that now holds the old content."""
    if rename_exchange(staging, target):
        return staging
    backup = make_tempdir(target.parent, f".{target.name}{BACKUP_INFIX}", "")
    os.replace(target, backup / target.name)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(backup / target.name, target)
        shutil.rmtree(backup, ignore_errors=True)
        raise
    return backup


def restore_interrupted_dir(target: Path) -> bool:
    """Put back a ``target`` that a crash left moved aside (``.NAME.old-XXXX/NAME``); True if one was."""
    if target.exists() or not target.parent.is_dir():
        return False
    prefix = f".{target.name}{BACKUP_INFIX}"
    for backup in sorted(target.parent.iterdir()):
        if backup.name.startswith(prefix) and (backup / target.name).is_dir():
            os.replace(backup / target.name, target)
            fsync_dir(target.parent)
            shutil.rmtree(backup, ignore_errors=True)
            return True
    return False


def install_dir_atomic(staging: Path, target: Path, replace: bool = False) -> Path:
    """Make the finished folder ``staging`` appear as ``target`` (same file system), durably.

    Args:
        staging: the filled folder, a sibling of ``target`` (e.g. from `make_tempdir`); it is gone afterwards.
        target: the final folder.
        replace: swap out and delete an existing ``target``. Without it an existing ``target`` (another
            process finished first) is kept and ``staging`` deleted.

    Returns:
        ``target``.
    """
    fsync_tree(staging)
    if replace and target.exists():
        old = _swap_into_place(staging, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
        return target
    try:
        os.replace(staging, target)  # also replaces an empty folder
    except OSError:
        if not target.is_dir():
            raise
        if replace:
            return install_dir_atomic(staging, target, replace=True)  # appeared since the check above
        shutil.rmtree(staging, ignore_errors=True)  # another process finished first: keep its copy
        return target
    fsync_dir(target.parent)
    return target
