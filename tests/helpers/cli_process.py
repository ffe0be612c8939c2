"""``gatera-lab`` in a child Python process, as a user's shell runs it (shared by tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence


def run_cli_process(args: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m gatera_lab.cli ARGS`` from the current folder, one OpenMP thread; its exit code and output."""
    command = [sys.executable, "-m", "gatera_lab.cli", *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)


DDP_ON_TWO_CPUS = ["--trainer.strategy", "ddp", "--trainer.accelerator", "cpu", "--trainer.devices", "2"]


def run_ddp_on_two_cpus(args: Sequence[str]) -> str:
    """``args`` under DDP on two CPU processes in a child process, which must exit 0 over gloo; its output."""
    result = run_cli_process([*args, *DDP_ON_TWO_CPUS])
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stderr + result.stdout
    assert "distributed_backend=gloo" in output
    return output
