"""The machine and code a run ran on: CPU, cores, torch threads, accelerator, library versions, git commit."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Any

import lightning
import torch
import transformers


def describe_machine(threads: int | None = None) -> dict[str, Any]:
    """What a record states about the machine; ``threads`` is the runner's torch thread setting."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text(errors="replace").splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("model name")]
    return {
        "cpu": names[0] if names else platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": threads or torch.get_num_threads(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "transformers": transformers.__version__,
    }


def describe(machine: dict[str, Any] | None) -> str:
    """One line: ``<cpu>, <cores> cores, <threads> torch threads[, <accelerator>]``."""
    if not machine:
        return "unknown"
    text = f"{machine.get('cpu')}, {machine.get('cores')} cores, {machine.get('torch_threads')} torch threads"
    return text + (f", {machine['accelerator']}" if machine.get("accelerator") else ", no accelerator")


def git_commit() -> str | None:
    """The checkout's HEAD commit, with ``+dirty`` when tracked files differ from it (None outside git)."""
    try:
        git = [["git", "rev-parse", "HEAD"], ["git", "status", "--porcelain", "--untracked-files=no"]]
        head, dirty = (
            subprocess.run(c, capture_output=True, text=True, check=True, timeout=10).stdout.strip()
            for c in git
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def peak_memory_gib() -> float:
    """The peak resident memory of this process so far, GiB (``getrusage``; Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
