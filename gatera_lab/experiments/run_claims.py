"""Claims that let several ``gatera-lab sweep`` workers share one plan without doing a run twice.

A worker claims a run before starting it by creating ``<runs>/<name>.claim`` exclusively (``O_CREAT |
O_EXCL``, atomic on one file system), with its host name and process id inside, and removes the claim when
the run ends, however it ends. A claim is *live* while its process runs; a claim left by a process that is
gone (same host, no such process) is stale and is taken over. A claim from another host counts as live
until it is removed by hand, since this host cannot see that process.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

SUFFIX = ".claim"


def claim_path(runs_dir: Path, name: str) -> Path:
    """Where run ``name``'s claim lives."""
    return runs_dir / f"{name}{SUFFIX}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _claim_is_live(path: Path) -> bool:
    """Whether the claim at ``path`` belongs to a process that still runs (or cannot be checked)."""
    try:
        owner = json.loads(path.read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # being written right now, or unreadable: leave it alone
    if owner.get("host") != socket.gethostname():
        return True
    return _process_alive(int(owner.get("pid", -1)))


def claimed_by_others(runs_dir: Path, names: Iterable[str]) -> set[str]:
    """The runs among ``names`` that another live worker has claimed."""
    return {name for name in names if _claim_is_live(claim_path(runs_dir, name))}


def _try_create(path: Path) -> bool:
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"host": socket.gethostname(), "pid": os.getpid()}, handle)
    return True


@contextmanager
def claim_run(runs_dir: Path, name: str) -> Iterator[bool]:
    """Claim run ``name`` for this process; yields whether the claim was won (False: another worker has it).

    A stale claim (its process is gone) is removed and claimed afresh. A won claim is removed on exit.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = claim_path(runs_dir, name)
    won = _try_create(path)
    if not won and not _claim_is_live(path):
        path.unlink(missing_ok=True)
        won = _try_create(path)
    try:
        yield won
    finally:
        if won:
            path.unlink(missing_ok=True)
