"""The training mixture, tokenised, from the disk cache: a repeated start neither reads nor tokenises the data.

`prepared_mixture` returns the tokenised training rows, each row's task and the validation records for a
``key`` that names everything they depend on (data source and its pinned identity, tokenizer fingerprint,
tasks, caps, seed, sizes, format, ``max_length``). The training rows live in the tokenised-example cache
(`gatera_lab.datamodules.tokenized_cache`); the row tasks and the validation records (small) in a JSON file
beside it, ``<same name>.mixture.json``, which holds the key too. Either file missing or not matching the
key means the mixture is built again (and the file rewritten, atomically).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatera_lab.datamodules.instruction_data import TokenizedExample
from gatera_lab.datamodules.tokenized_cache import cache_file, cached_examples, canonical_json
from gatera_lab.datamodules.training_mixture import TrainingMixture
from gatera_lab.io.atomic_write import write_json_atomic


@dataclass(frozen=True)
class PreparedMixture:
    """Tokenised training rows with their tasks, and the validation records (untokenised)."""

    train: list[TokenizedExample]
    train_tasks: list[str]
    validation: list[dict[str, Any]]


def prepared_mixture(
    key: dict[str, Any],
    build_mixture: Callable[[], TrainingMixture],
    tokenize: Callable[[dict[str, Any]], TokenizedExample],
    cache_dir: str | os.PathLike[str] | None,
) -> PreparedMixture:
    """The mixture of ``key``, from the cache when both its files match, else built and cached."""
    key_json = canonical_json(key)
    sidecar = cache_file(key, cache_dir).with_suffix(".mixture.json")
    summary = _read_summary(sidecar, key_json)
    built: list[TrainingMixture] = []

    def mixture() -> TrainingMixture:
        if not built:
            built.append(build_mixture())
        return built[0]

    if summary is None:
        summary = {
            "key": key_json,
            "train_tasks": [record["task"] for record in mixture().train],
            "validation": mixture().validation,
        }
        write_json_atomic(sidecar, summary)
    train = cached_examples(
        key, lambda: [tokenize(record) for record in mixture().train], cache_dir, "training rows"
    )
    return PreparedMixture(train, summary["train_tasks"], summary["validation"])


def _read_summary(path: os.PathLike[str], key_json: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as file:
            summary = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("key") != key_json:
        return None
    return summary
