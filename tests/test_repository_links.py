"""`.ci/check-links` refuses committed symbolic links that leave the repository or dangle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "check-links"


def run(repository: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repository / ".ci" / "check-links")], capture_output=True, text=True)


def make_repository(tmp_path: Path) -> Path:
    repository = tmp_path / "repo"
    (repository / ".ci").mkdir(parents=True)
    shutil.copy(SCRIPT, repository / ".ci" / "check-links")
    (repository / "inside.txt").write_text("x")
    (repository / "good").symlink_to("inside.txt")
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    return repository


def test_this_repository_has_no_link_that_leaves_it() -> None:
    assert run(ROOT).returncode == 0


def test_a_link_inside_the_repository_passes_and_one_outside_is_named(tmp_path: Path) -> None:
    repository = make_repository(tmp_path)
    subprocess.run(["git", "-C", str(repository), "add", "."], check=True)
    assert run(repository).returncode == 0
    (repository / "methods").mkdir()
    (repository / "methods" / "methods").symlink_to("/work/elsewhere/methods")
    subprocess.run(["git", "-C", str(repository), "add", "."], check=True)
    result = run(repository)
    assert result.returncode == 1
    assert "methods/methods -> /work/elsewhere/methods leaves the repository or dangles" in result.stderr
