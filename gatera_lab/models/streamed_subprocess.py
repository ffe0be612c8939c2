"""Run a command whose output the user watches live (a long download) and keep it for an error message.

`run_streamed` returns what `subprocess.run` with ``capture_output=True`` would, but the user sees the
command's progress while it runs:

- stderr is a terminal: the command's stdout goes straight to it (pip draws its progress bar only on a
  terminal), and its stderr (pip's warnings and errors) is captured and returned;
- otherwise (a log file, a pipe, a test): stdout and stderr are merged, each line is echoed to
  ``sys.stderr`` as it arrives and the last `TAIL_LINES` lines are returned as ``stdout``.

A Python child runs with ``PYTHONUNBUFFERED=1`` so that its lines arrive when written, not at its exit.
"""

from __future__ import annotations

import collections
import io
import os
import subprocess
import sys

TAIL_LINES = 200


def _terminal_fd() -> int | None:
    """The file descriptor of ``sys.stderr`` if it is a terminal, else None."""
    try:
        return sys.stderr.fileno() if sys.stderr.isatty() else None
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return None


def run_streamed(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` showing its output on stderr as it runs (see module); never raises on a failure exit."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    terminal = _terminal_fd()
    if terminal is not None:
        completed = subprocess.run(command, stdout=terminal, stderr=subprocess.PIPE, text=True, env=env)
        return subprocess.CompletedProcess(command, completed.returncode, "", completed.stderr)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=env
    ) as process:
        for line in process.stdout or ():  # stdout=PIPE: a text stream of the merged output
            sys.stderr.write(line)
            sys.stderr.flush()
            tail.append(line)
    return subprocess.CompletedProcess(command, process.returncode, "".join(tail), "")
