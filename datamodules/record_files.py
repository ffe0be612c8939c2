"""Read a user's records from a JSON list, a JSONL file or a local Hugging Face ``datasets`` file or folder.

Which reader is used follows from the path:

- a folder: written by ``Dataset.save_to_disk`` (read with ``datasets.load_from_disk``);
- ``.json``: one JSON list of objects (UTF-8, or UTF-16/UTF-32 with a byte-order mark, `read_json_file`);
- ``.jsonl``: one JSON object per line (blank lines are skipped);
- ``.parquet``, ``.arrow``, ``.csv``: ``datasets.load_dataset(<format>, data_files=path)``, offline.

``datasets`` is imported only for the last two kinds, so JSON users do not need it. Every record keeps
its place (``file, row 3`` or ``file, line 7``) so that later checks name where a bad field is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatera_lab.datamodules.json_text_file import decode_json_bytes, read_json_file
from gatera_lab.errors import ConfigError

DATASETS_FORMATS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}
SUFFIXES = (".json", ".jsonl", *DATASETS_FORMATS)


@dataclass(frozen=True)
class FileRecords:
    """The records of one file and, for each, where it is (``places[i]`` names ``records[i]`` in errors)."""

    path: Path
    records: list[dict[str, Any]]
    places: list[str]


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (``an object``, ``a list``, ``a number``, ...)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def read_record_file(path: str | Path, what: str = "instruction file") -> FileRecords:
    """All records of ``path`` (see the module docstring); ``what`` names the file in errors."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{what} {str(path)!r} does not exist")
    if path.is_dir() and path.suffix.lower() in SUFFIXES:
        name = "JSON" if path.suffix.lower() == ".json" else path.suffix.lower()[1:]
        raise ConfigError(f"{path}: is a folder, not a {name} file")
    if path.is_dir():
        rows = _read_saved_dataset(path)
    elif path.suffix.lower() == ".jsonl":
        return _checked(path, *read_jsonl(path))
    elif path.suffix.lower() in DATASETS_FORMATS:
        rows = _read_with_datasets(path, DATASETS_FORMATS[path.suffix.lower()])
    elif path.suffix.lower() == ".json" or not path.suffix:
        rows = read_json_file(path)
        if not isinstance(rows, list):
            raise ConfigError(f"{path}: expected a JSON list of records, got {json_type(rows)}")
    else:
        raise ConfigError(
            f"{what} {str(path)!r}: unknown format {path.suffix!r}; use one of {', '.join(SUFFIXES)} "
            "or a folder written by datasets' save_to_disk"
        )
    return _checked(path, rows, [f"{path}, row {index}" for index in range(len(rows))])


def _checked(path: Path, rows: list[Any], places: list[str]) -> FileRecords:
    """``rows`` as records, once each is known to be an object and there is at least one."""
    for row, place in zip(rows, places, strict=True):
        if not isinstance(row, dict):
            raise ConfigError(f"{place}: expected an object, got {json_type(row)}")
    if not rows:
        raise ConfigError(f"{path}: the file holds no records")
    return FileRecords(path, rows, places)


def read_jsonl(path: Path) -> tuple[list[Any], list[str]]:
    """The values of the non-blank lines of a JSONL file, and their places (``file, line n``, from 1)."""
    try:
        text = decode_json_bytes(path.read_bytes(), str(path))
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror or error})") from error
    rows, places = [], []
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}, line {number}: not valid JSON ({error.msg} at column {error.colno}); "
                "a JSONL file holds one JSON object per line"
            ) from error
        places.append(f"{path}, line {number}")
    return rows, places


def _import_datasets(path: Path) -> Any:
    try:
        import datasets
    except ImportError as error:
        raise ConfigError(
            f"{path}: reading this kind of file needs the 'datasets' package (pip install datasets)"
        ) from error
    return datasets


def _read_saved_dataset(path: Path) -> list[Any]:
    """The rows of a folder written by ``Dataset.save_to_disk`` (a one-split ``DatasetDict`` too)."""
    datasets = _import_datasets(path)
    try:
        dataset = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as error:
        raise ConfigError(
            f"{path}: is a folder, but not one written by datasets' save_to_disk ({error})"
        ) from error
    if isinstance(dataset, datasets.DatasetDict):
        if len(dataset) != 1:
            raise ConfigError(
                f"{path}: holds the splits {sorted(dataset)}; give one split's folder (e.g. {path}/train)"
            )
        (dataset,) = dataset.values()
    return dataset.to_list()


def _read_with_datasets(path: Path, file_format: str) -> list[Any]:
    """The rows of a parquet, arrow or CSV file, read by ``datasets.load_dataset`` (no network)."""
    datasets = _import_datasets(path)
    try:
        dataset = datasets.load_dataset(file_format, data_files=str(path), split="train")
    except Exception as error:  # pyarrow and datasets raise many types for a malformed file
        raise ConfigError(
            f"{path}: cannot be read as {file_format} ({type(error).__name__}: {error})"
        ) from error
    return dataset.to_list()
