"""The study's committed records keep their identity under today's configs and options.

A run's identity hashes its resolved configuration (`gatera_lab.experiments.run_config`); a new option of
the CLI, or a changed overlay, that altered the hash of every run would orphan every record, and the sweep
would train them all again. Each record's own fit command is resolved again here and must hash to the
identity on record (``model.micro_batch_tokens``, now in the study overlay, is how a step is computed and
stays out of the hash).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from gatera_lab.experiments.run_config import identity_hash, resolve_config

ROOT = Path(__file__).resolve().parents[1]
RECORDS = sorted((ROOT / "results" / "study" / "records").glob("*.json"))
FITTED = [path for path in RECORDS if "fit" in json.loads(path.read_text()).get("commands", {})]


@pytest.mark.parametrize("path", FITTED[:: max(1, len(FITTED) // 4)], ids=lambda path: path.stem)
def test_a_record_fit_command_resolves_to_its_identity(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = json.loads(path.read_text())
    monkeypatch.chdir(ROOT)  # the commands name configs/ relative to the repository
    args = shlex.split(record["commands"]["fit"])[2:]  # after "gatera-lab fit"
    resolved = resolve_config(args)
    assert resolved["model"]["micro_batch_tokens"] == 1536  # the overlay's cap is in the configuration
    assert identity_hash(resolved) == record["identity"]
