"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and their checker sees every module.

`.ci/lint-imports` runs import-linter on the package as installed; without its staging, gatera_lab.methods
and gatera_lab.datamodules (folders methods/ and datamodules/) would be missing from the import graph and
every contract about them would pass vacuously.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "lint-imports"

pytestmark = pytest.mark.skipif(
    shutil.which("lint-imports") is None, reason="import-linter (dev extra) missing"
)


def lint_imports(config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if config is not None:
        env["LINT_IMPORTS_CONFIG"] = str(config)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300)


def test_the_projects_import_contracts_hold():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "Nothing imports the study harness KEPT" in result.stdout


def test_the_checker_sees_the_methods_and_datamodules_folders(tmp_path):
    """A contract that the methods and the data modules break is reported broken, naming their modules."""
    config = tmp_path / "probe.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "gatera_lab"\n\n'
        "[[tool.importlinter.contracts]]\n"
        'name = "probe"\ntype = "forbidden"\n'
        'source_modules = ["gatera_lab.methods", "gatera_lab.datamodules"]\n'
        'forbidden_modules = ["gatera_lab.registry", "gatera_lab.evaluation"]\n'
    )
    result = lint_imports(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "probe BROKEN" in result.stdout
    assert "gatera_lab.methods.lora -> gatera_lab.registry" in result.stdout
    assert "gatera_lab.datamodules is not allowed to import gatera_lab.evaluation" in result.stdout
    assert "gatera_lab.datamodules.commonsense_datamodule ->" in result.stdout
