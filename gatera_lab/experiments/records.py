"""Run records: one JSON file per run, ``<records>/<run name>.json``, written atomically.

A record (``schema`` 1) holds what a run was and what it measured::

    name, identity, kind ("train" or "zero_shot"), method, family, phases, seed, learning_rate,
    entropy_weight, config (the resolved CLI configuration), commands {"fit", "test"}, sweep {file, command},
    fit {log_dir, checkpoint, steps, wall_seconds, peak_memory_gib, final, gate_trace} | null,
    validation {step, loss, accuracy {avg, <task>...}} | null,
    gates {...FinalGateProbe statistics...} | null, test {settings, accuracy, counts, protocol, wall_seconds} | null,
    learning_rate_choice {family, grid, chosen, reason} | null, machine {...}, git_commit, created, updated

A run whose record exists is not trained again; a record whose test is missing or was made with other test
settings gets its test added (from the run's checkpoint when it is still there).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from gatera_lab.errors import ConfigError
from gatera_lab.io.atomic_write import write_json_atomic

SCHEMA = 1


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def record_path(records_dir: str | os.PathLike[str], name: str) -> Path:
    return Path(records_dir) / f"{name}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"run record {str(path)!r} is not readable JSON ({error})") from error
    if not isinstance(record, dict) or record.get("schema") != SCHEMA or not record.get("name"):
        raise ConfigError(f"run record {str(path)!r} is not a schema-{SCHEMA} run record")
    return record


def read_record(records_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The record of run ``name``, or None when it has none."""
    path = record_path(records_dir, name)
    return _read(path) if path.is_file() else None


def load_records(records_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Every record in ``records_dir`` by run name (empty when the folder does not exist)."""
    folder = Path(records_dir)
    if not folder.is_dir():
        return {}
    records = {}
    for path in sorted(folder.glob("*.json")):
        record = _read(path)
        records[record["name"]] = record
    return records


def write_record(records_dir: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write ``record`` as ``<records_dir>/<name>.json``, atomically and durably.

    A temporary ``.<name>.json.XXXX.tmp`` in the same folder is written, fsynced and renamed into place
    (`gatera_lab.io.atomic_write`): a sweep killed while writing leaves the previous record or the complete
    new one, and `load_records` never sees the temporary file (it reads ``*.json`` only).
    """
    record = json_safe({**record, "schema": SCHEMA})
    path = record_path(records_dir, record["name"])
    write_json_atomic(path, record)
    return path
