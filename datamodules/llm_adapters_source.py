"""Source of the LLM-Adapters JSON files: ``dataset/<task>/{train,test}.json`` and ``commonsense_170k.json``.

A file is taken from ``data_dir`` when given (``<data_dir>/<task>/<split>.json``, the task folder named
as in `TaskSpec.name` or as in the LLM-Adapters repository, optionally under ``dataset/``), else from the
cache, else downloaded from the repository's raw GitHub URL into the cache (checked, then moved into place
atomically). Offline, the error names the URL and the local path that would have been used.

The URL names a fixed commit of the repository (`LLM_ADAPTERS_COMMIT`), and every file this module
fetches from it is pinned (`PINNED_FILES`): a download that differs from its pin is a `DownloadError`
naming both hashes and is not cached, and a cached copy is checked before each use (once per process while
it is unchanged) and fetched again if it differs. Eleven files are pinned by SHA-256, computed from the
copies in the project's shared data folder, which are byte-identical to the repository's blobs at that
commit; the six files too large for the snapshot at hand (HellaSwag's test and train sets, the PIQA, SIQA
and WinoGrande train sets, ``commonsense_170k.json``) are pinned by their git blob ids at that commit,
which fix their bytes as well (see `gatera_lab.io.file_hashes`). Another ``base_url`` (a fork, a test server)
serves other bytes, so its files are checked only against the ``pins`` given to `fetch_file`.

Each record's instruction is parsed back into a `CommonsenseExample` and rendered again; a row whose
rendering differs, or whose ``answer`` is not one of its labels, is an error naming the file and row.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gatera_lab.datamodules.commonsense_examples import TASKS, CommonsenseExample, DataFormatError, TaskSpec
from gatera_lab.datamodules.instruction_data import read_instruction_file
from gatera_lab.errors import ConfigError
from gatera_lab.io.atomic_write import atomic_path
from gatera_lab.models.local_cache import DownloadError, cache_root, discard_unverified, require_pin

LLM_ADAPTERS_COMMIT = "816657208af4db747803f87ba40a4c71383fed7a"  # main on 2024-03-10
LLM_ADAPTERS_RAW_URL = f"https://raw.githubusercontent.com/AGI-Edgerunners/LLM-Adapters/{LLM_ADAPTERS_COMMIT}"
COMMONSENSE_170K = "ft-training_set/commonsense_170k.json"
PINNED_FILES: dict[str, str] = {
    "dataset/boolq/train.json": "sha256:5ccbaceebaddc69765e1c4a363632196b81851d303696672165ab59ec4e48c83",
    "dataset/boolq/test.json": "sha256:89df2397cbca81dc31adcc6f7f5b635821aa0565aafde46725b2b4bd39b4dfa9",
    "dataset/piqa/train.json": "git-blob-sha1:44326ba946f8bd645bfa7a189e619d29b5bc17e5",
    "dataset/piqa/test.json": "sha256:3860d11b9b42e590b6b4bbc1643214d373ed0b0d4ac62fcc7bdceb8e044ad141",
    "dataset/social_i_qa/train.json": "git-blob-sha1:bd524129d80efdfabc8476bbedc4f41b400cfda0",
    "dataset/social_i_qa/test.json": "sha256:71543f41127451945379d106ffedaef502f1c8770dff6d2f543aca85e3080b1d",
    "dataset/hellaswag/train.json": "git-blob-sha1:ca68dc85fc2a2f73c9b1b8b0823cc41a8f669718",
    "dataset/hellaswag/test.json": "git-blob-sha1:183c4920415f83ba4b793c4873a33e7e10bd1be5",
    "dataset/winogrande/train.json": "git-blob-sha1:0b56375ac6b4464fa97abfb72812f15c772ba305",
    "dataset/winogrande/test.json": "sha256:6946f5209e7114c65c6d04f8f644c5a061af20d730b1cfe158fff3dc44076fb9",
    "dataset/ARC-Easy/train.json": "sha256:6a06cece3dec32f4fb1c1b0fc29dab14be7cf3053b417290dbc6cd845359f5ff",
    "dataset/ARC-Easy/test.json": "sha256:3f32a84716ca6d57d38728bf80cc8117aecd17445c2cf29a68b571b810eb82dc",
    "dataset/ARC-Challenge/train.json": "sha256:a9debff28aafed86a08211dc3584a3b6cb38edca8c56bb34cd5002ed54aeebfb",
    "dataset/ARC-Challenge/test.json": "sha256:4a89ce368ae01a71d268d9851686738b2a0a1d84271116bab49a1dd2b48ecad7",
    "dataset/openbookqa/train.json": "sha256:a1e094eeea01f70c0baa880f37497b26700ae99b243927b9c529984de9b1fe90",
    "dataset/openbookqa/test.json": "sha256:8479930f7b8a26052c78250280b5465a4016ca7fc806af440d0f37e243f3099e",
    COMMONSENSE_170K: "git-blob-sha1:529e426b33d4cdb1d0c4a275a1a7245ad081fd91",
}
DOWNLOAD_TIMEOUT_S = 60.0

_TEMPLATES: dict[str, str] = {
    "boolq": r"Please answer the following question with true or false, question: (?P<question>.*)\n\nAnswer format: true/false",
    "piqa": r"Please choose the correct solution to the question: (?P<question>.*?)\n\n(?P<choices>Solution1: .*)\n\nAnswer format: solution1/solution2",
    "hellaswag": r"Please choose the correct ending to complete the given sentence: (?P<question>.*?)\n\n(?P<choices>Ending1: .*)\n\nAnswer format: [a-z0-9/]+",
    "winogrande": r"Please choose the correct answer to fill in the blank to complete the given sentence: (?P<question>.*?)\n\n(?P<choices>Option1: .*) Answer format: option1/option2",
    "answer": r"Please choose the correct answer to the question: (?P<question>.*?)\n\n(?P<choices>Answer1: .*)\n\nAnswer format: [a-z0-9/]+",
}
_SEPARATORS = {"piqa": "\n\n"}  # other tasks separate numbered choices with one space


def remote_url(relative_path: str, base_url: str = LLM_ADAPTERS_RAW_URL) -> str:
    return f"{base_url.rstrip('/')}/{relative_path}"


def task_relative_path(spec: TaskSpec, split: str) -> str:
    return f"dataset/{spec.llm_adapters_folder}/{split}.json"


def find_local_file(spec: TaskSpec, split: str, data_dir: str | os.PathLike[str]) -> Path | None:
    """``<data_dir>[/dataset]/<folder>/<split>.json`` for the task's folder names, first that exists."""
    root = Path(data_dir).expanduser()
    for base in (root, root / "dataset"):
        for folder in dict.fromkeys((spec.name, spec.llm_adapters_folder, spec.llm_adapters_folder.lower())):
            candidate = base / folder / f"{split}.json"
            if candidate.is_file():
                return candidate
    return None


def fetch_file(
    relative_path: str,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str = LLM_ADAPTERS_RAW_URL,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
    pins: Mapping[str, str] | None = None,
) -> Path:
    """The cached copy of ``relative_path`` of the LLM-Adapters repository, downloaded on first use.

    Args:
        relative_path: the file's path in the repository, e.g. ``dataset/boolq/test.json``.
        cache_dir: the cache root (default: `gatera_lab.models.local_cache.cache_root`).
        base_url: where the repository's files are served.
        timeout_s: network timeout of the download.
        pins: ``{relative_path: pin}`` to check the file against; default `PINNED_FILES` for the pinned
            `LLM_ADAPTERS_RAW_URL`, none for another ``base_url``.

    Raises:
        DownloadError: offline, or the download is not a valid LLM-Adapters file or differs from its pin.
    """
    if pins is None:
        pins = PINNED_FILES if base_url.rstrip("/") == LLM_ADAPTERS_RAW_URL else {}
    pin = pins.get(relative_path)
    url = remote_url(relative_path, base_url)
    target = cache_root(cache_dir) / "llm_adapters" / relative_path
    if target.is_file() and not discard_unverified(target, pin, url):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(target, ".download") as temporary:
            with temporary.open("wb") as file, urllib.request.urlopen(url, timeout=timeout_s) as response:
                shutil.copyfileobj(response, file)
            require_pin(temporary, pin, url, target)
            read_instruction_file(temporary)  # a truncated or wrong download fails here, before it is cached
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise DownloadError(
            f"could not download {url} ({getattr(error, 'reason', error)}); offline, place the file at {target} "
            f"or pass data_dir=<folder holding {relative_path.removeprefix('dataset/')}>"
        ) from error
    except ConfigError as error:
        raise DownloadError(f"the download of {url} is not a valid LLM-Adapters file: {error}") from error
    return target


def load_llm_adapters_task(
    spec: TaskSpec,
    split: str,
    cache_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    base_url: str = LLM_ADAPTERS_RAW_URL,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> list[CommonsenseExample]:
    """The examples of ``spec`` for ``split`` from a local folder or the (cached) repository file."""
    path = find_local_file(spec, split, data_dir) if data_dir is not None else None
    if data_dir is not None and path is None:
        raise DataFormatError(
            f"data_dir {str(data_dir)!r} has no {spec.name}/{split}.json (nor {spec.llm_adapters_folder}/{split}.json)"
        )
    path = path or fetch_file(task_relative_path(spec, split), cache_dir, base_url, timeout_s)
    return read_task_file(spec, path)


def read_task_file(spec: TaskSpec, path: str | os.PathLike[str]) -> list[CommonsenseExample]:
    """Parse every record of an LLM-Adapters file of task ``spec``; errors name the file and the row."""
    records = read_instruction_file(path)
    return [record_to_example(spec, record, f"{path}, row {row}") for row, record in enumerate(records)]


def record_to_example(spec: TaskSpec, record: dict[str, Any], origin: str) -> CommonsenseExample:
    """The structured example of one LLM-Adapters record of task ``spec``."""
    instruction = record["instruction"]
    answer = record.get("answer")
    if not isinstance(answer, str):
        raise DataFormatError(f"{origin}: field 'answer' is missing or not a string")
    question, choices = parse_instruction(spec, instruction, origin)
    labels = spec.labels(len(choices))
    if answer not in labels:
        raise DataFormatError(f"{origin}: answer {answer!r} is not one of the row's labels {list(labels)}")
    example = CommonsenseExample(spec.name, question, choices, labels.index(answer), "", origin)
    if example.instruction() != instruction:
        raise DataFormatError(f"{origin}: the instruction does not follow the {spec.name} template exactly")
    return example


def parse_instruction(spec: TaskSpec, instruction: str, origin: str) -> tuple[str, tuple[str, ...]]:
    """``(question, choices)`` of an instruction rendered with the template of ``spec``."""
    key = spec.name if spec.name in _TEMPLATES else "answer"
    match = re.fullmatch(_TEMPLATES[key], instruction, flags=re.DOTALL)
    if match is None:
        raise DataFormatError(
            f"{origin}: the instruction does not match the {spec.name} template: {instruction[:80]!r}"
        )
    if spec.name == "boolq":
        return match["question"], ("true", "false")
    word = spec.label_word.capitalize()
    separator = _SEPARATORS.get(spec.name, " ")
    parts = re.split(rf"(?:^|{re.escape(separator)}){word}(\d): ", match["choices"])
    numbers, texts = parts[1::2], parts[2::2]
    if parts[0] or numbers != [str(index + 1) for index in range(len(numbers))]:
        raise DataFormatError(f"{origin}: cannot split the {word}1..N choices of the instruction")
    return match["question"], tuple(texts)


def read_commonsense_170k(
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str = LLM_ADAPTERS_RAW_URL,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> list[dict[str, Any]]:
    """The records of ``commonsense_170k.json`` (local ``data_dir`` first, else cached or downloaded).

    Each record gains ``task``: its template family (`template_family`).
    """
    path = None
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        path = next(
            (p for p in (root / "commonsense_170k.json", root / COMMONSENSE_170K) if p.is_file()), None
        )
        if path is None:
            raise DataFormatError(
                f"data_dir {str(data_dir)!r} has no commonsense_170k.json (nor {COMMONSENSE_170K})"
            )
    path = path or fetch_file(COMMONSENSE_170K, cache_dir, base_url, timeout_s)
    records = read_instruction_file(path)
    for row, record in enumerate(records):
        record["task"] = template_family(record["instruction"], f"{path}, row {row}")
    return records


def template_family(instruction: str, origin: str) -> str:
    """The task of an instruction by its template; ARC-e, ARC-c and OBQA share one (``arc_openbookqa``).

    SIQA is told apart from ARC/OBQA by its three answers; the few three-answer ARC questions count as SIQA.
    """
    for name in ("boolq", "piqa", "hellaswag", "winogrande"):
        if re.fullmatch(_TEMPLATES[name], instruction, flags=re.DOTALL):
            return name
    if re.fullmatch(_TEMPLATES["answer"], instruction, flags=re.DOTALL):
        return "social_i_qa" if instruction.endswith("answer1/answer2/answer3") else "arc_openbookqa"
    raise DataFormatError(f"{origin}: the instruction matches none of the {len(TASKS)} task templates")
