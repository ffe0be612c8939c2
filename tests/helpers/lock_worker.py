"""Other sweep workers for the claim tests: real processes that claim runs through `run_locks`.

Run as a script (the tests start it with `subprocess`):

    python tests/helpers/lock_worker.py hold RUNS NAME READY RELEASE
        claim run NAME, create READY, hold the claim until RELEASE exists (at most HOLD_SECONDS), exit 0;
        exit 3 if the claim was not won.
    python tests/helpers/lock_worker.py work RUNS LOG READY GO NAME...
        create READY, wait for GO, then loop as ``gatera-lab sweep`` does until every NAME is done: skip the
        runs other workers hold, claim the first free one, and if it is won and not done yet (RUNS/NAME.done
        absent), append "NAME PID" to LOG (O_APPEND), sleep briefly while holding the claim, create
        RUNS/NAME.done.

The script loads ``run_locks.py`` by its file path: it needs only the standard library and filelock, and
importing the ``gatera_lab`` package would import torch, seconds per process on a loaded machine.
Synchronisation is by files with generous time limits, never by fixed sleeps.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

RUN_LOCKS = Path(__file__).parents[2] / "gatera_lab" / "experiments" / "run_locks.py"
HOLD_SECONDS = 300.0  # a holder never outlives a test run by more than this, even if nobody releases it
READY_SECONDS = 120.0  # how long a test waits for a worker to start (a loaded machine is slow)
WORK_SECONDS = 120.0
POLL = 0.01


def _run_locks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_locks", RUN_LOCKS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def _hold(runs: Path, name: str, ready: Path, release: Path) -> int:
    with _run_locks().claim_run(runs, name) as won:
        if not won:
            return 3
        ready.touch()
        _wait_for(release, HOLD_SECONDS)
    return 0


def _work(runs: Path, log: Path, ready: Path, go: Path, names: list[str]) -> int:
    claims = _run_locks()
    ready.touch()
    if not _wait_for(go, READY_SECONDS):
        return 4
    deadline = time.monotonic() + WORK_SECONDS
    while time.monotonic() < deadline:
        left = [name for name in names if not (runs / f"{name}.done").exists()]
        if not left:
            return 0
        held = claims.claimed_by_others(runs, left)
        todo = [name for name in left if name not in held]
        if not todo:
            time.sleep(POLL)  # only runs the other worker holds are left
            continue
        with claims.claim_run(runs, todo[0]) as won:
            if not won or (runs / f"{todo[0]}.done").exists():
                continue  # claimed or finished by the other worker a moment ago
            descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, f"{todo[0]} {os.getpid()}\n".encode())
            finally:
                os.close(descriptor)
            time.sleep(0.02)  # the run takes a while: the other worker meets the claim
            (runs / f"{todo[0]}.done").touch()
    return 5


@dataclass
class Worker:
    """One started claim worker: its process and the file that collects its output."""

    process: subprocess.Popen
    output: Path

    @classmethod
    def start(cls, mode: str, *args: object, scratch: Path) -> Worker:
        """Start this script in ``mode`` with ``args``; its output goes to a new file in ``scratch``."""
        scratch.mkdir(parents=True, exist_ok=True)
        output = scratch / f"{mode}-{len(list(scratch.glob(f'{mode}-*.out')))}.out"
        with output.open("w") as handle:
            command = [sys.executable, __file__, mode, *map(str, args)]
            process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
        return cls(process, output)

    def wait_ready(self, ready: Path) -> None:
        """Wait until the worker created ``ready``; fails with its output if it exits first or takes too long."""
        deadline = time.monotonic() + READY_SECONDS
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"claim worker not ready (exit {self.process.returncode}): {self.log()}")
            time.sleep(POLL)

    def finish(self) -> int:
        """Wait (generously) for the worker to exit; returns its exit status."""
        return self.process.wait(timeout=WORK_SECONDS + READY_SECONDS)

    def kill(self) -> None:
        """SIGKILL the worker (if it still runs) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.output.read_text()


class ClaimHolder:
    """Another live process that holds run ``name``'s claim until `release` (or the ``with`` block ends)."""

    def __init__(self, runs_dir: Path, name: str, scratch: Path) -> None:
        ready, self.release_file = scratch / f"{name}.ready", scratch / f"{name}.release"
        self.worker = Worker.start("hold", runs_dir, name, ready, self.release_file, scratch=scratch)
        self.worker.wait_ready(ready)

    def release(self) -> None:
        """Let the holder go, and wait until it has exited (its claim then is free)."""
        self.release_file.touch()
        assert self.worker.finish() == 0, self.worker.log()

    def __enter__(self) -> ClaimHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.kill()


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "hold":
        runs, name, ready, release = rest
        sys.exit(_hold(Path(runs), name, Path(ready), Path(release)))
    runs, log, ready, go, *names = rest
    sys.exit(_work(Path(runs), Path(log), Path(ready), Path(go), names))
