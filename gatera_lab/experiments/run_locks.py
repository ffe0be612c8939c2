"""Claims that let several ``gatera-lab sweep`` workers share one plan without doing a run twice.

A worker claims run ``name`` by taking an exclusive OS lock on ``<runs>/<name>.claim`` without waiting
(`filelock.FileLock`: ``flock(LOCK_EX | LOCK_NB)`` on Linux) and releases it when the run ends. The kernel
ties the lock to the open file, so it ends with its process (even on SIGKILL): there is no stale claim.
A run is *claimed* exactly while some process holds its lock; the lock file stays on disk and means
nothing without a holder, whatever it contains. At most one process at a time holds a name's claim (a
second claim inside the holding process loses too); `claimed_by_others` is a snapshot that probes by
locking for an instant, so a racing `claim_run` may lose once and look again. A file system without
flock is an error, never a fallback to a lock file that would outlive its process. This module needs
only the standard library and filelock (the tests load it by path).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

SUFFIX = ".claim"


def claim_path(runs_dir: Path, name: str) -> Path:
    """Where run ``name``'s lock file lives."""
    return runs_dir / f"{name}{SUFFIX}"


def _lock(path: Path) -> FileLock:
    # one attempt, never wait; no soft (marker file) fallback: it would not end with its process
    return FileLock(path, blocking=False, fallback_to_soft=False)


def _try_lock(lock: FileLock, path: Path) -> bool:
    """Take ``lock`` if no process holds it; raises ConfigError when the file cannot be locked at all."""
    try:
        lock.acquire()
    except Timeout:  # a subclass of OSError: another open file of this path holds the lock
        return False
    except OSError as error:
        # imported here so that this module needs only the standard library and filelock (no torch)
        from gatera_lab.errors import ConfigError

        raise ConfigError(
            f"cannot lock the run claim {path}: {error}; the runs folder (option --runs or the sweep "
            "file's 'runs') must be a writable folder on a file system with flock"
        ) from error
    return True


def claimed_by_others(runs_dir: Path, names: Iterable[str]) -> set[str]:
    """The runs among ``names`` whose claim a process holds (another worker, or this one in `claim_run`).

    A run that was never claimed has no lock file and is not probed (probing would create the file).
    """
    held = set()
    for name in names:
        path = claim_path(runs_dir, name)
        if not path.exists():
            continue
        lock = _lock(path)
        if _try_lock(lock, path):
            lock.release()
        else:
            held.add(name)
    return held


@contextmanager
def claim_run(runs_dir: Path, name: str) -> Iterator[bool]:
    """Claim run ``name`` for this process; yields whether the claim was won (False: another holder has it).

    A won claim is released on exit, also when the block raises; the lock file stays (see the module doc).
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = claim_path(runs_dir, name)
    lock = _lock(path)
    won = _try_lock(lock, path)
    try:
        yield won
    finally:
        if won:
            lock.release()


def take_slot(runs_dir: Path, kind: str, count: int) -> FileLock | None:
    """One of ``count`` slots of ``kind`` over all workers (``fit``: at most ``count`` fits at once), held
    by an OS lock like a claim; None when other holders have them all. The caller releases the lock."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        path = runs_dir / f"{kind}-slot-{index}{SUFFIX}"
        lock = _lock(path)
        if _try_lock(lock, path):
            return lock
    return None
