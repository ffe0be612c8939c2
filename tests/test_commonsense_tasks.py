"""The eight task templates, labels and validation of `CommonsenseExample` (no data files needed)."""

from __future__ import annotations

import pytest

from gatera_lab.datamodules.commonsense_tasks import (
    TASK_NAMES,
    TASKS,
    CommonsenseExample,
    DataFormatError,
    load_task,
    resolve_task,
)
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import COMMONSENSE_COLUMNS

# Expected instructions copied from the LLM-Adapters files (HellaSwag: from its published evaluation log).
CASES = [
    (
        CommonsenseExample(
            "boolq", "is house tax and property tax are same?", ("true", "false"), 0, "passage"
        ),
        "Please answer the following question with true or false, question: is house tax and property tax are same?"
        "\n\nAnswer format: true/false",
        "true",
    ),
    (
        CommonsenseExample(
            "piqa", "dresser", ("replace drawer with bobby pin ", "finish, woodgrain with  bobby pin "), 1
        ),
        "Please choose the correct solution to the question: dresser\n\nSolution1: replace drawer with bobby pin "
        "\n\nSolution2: finish, woodgrain with  bobby pin \n\nAnswer format: solution1/solution2",
        "solution2",
    ),
    (
        CommonsenseExample(
            "siqa",
            "What does Tracy need to do before this?",
            ("make a new plan", "Go home and see Riley", "Find somewhere to go"),
            2,
            "Tracy didn't go home that evening and resisted Riley's attacks.",
        ),
        "Please choose the correct answer to the question: Tracy didn't go home that evening and resisted Riley's "
        "attacks. What does Tracy need to do before this?\n\nAnswer1: make a new plan Answer2: Go home and see Riley "
        "Answer3: Find somewhere to go\n\nAnswer format: answer1/answer2/answer3",
        "answer3",
    ),
    (
        CommonsenseExample(
            "hellaswag",
            "Playing drums: People are standing behind large drums. A man",
            (
                "is playing a bag pipe.",
                "starts to play around the drums.",
                "begins playing a drum set.",
                "begins playing the drums.",
            ),
            3,
        ),
        "Please choose the correct ending to complete the given sentence: Playing drums: People are standing behind "
        "large drums. A man\n\nEnding1: is playing a bag pipe. Ending2: starts to play around the drums. Ending3: "
        "begins playing a drum set. Ending4: begins playing the drums.\n\nAnswer format: ending1/ending2/ending3/ending4",
        "ending4",
    ),
    (
        CommonsenseExample(
            "winogrande",
            "Sarah was a much better surgeon than Maria so _ always got the easier cases.",
            ("Sarah", "Maria"),
            1,
        ),
        "Please choose the correct answer to fill in the blank to complete the given sentence: Sarah was a much better "
        "surgeon than Maria so _ always got the easier cases.\n\nOption1: Sarah Option2: Maria Answer format: option1/option2",
        "option2",
    ),
    (
        CommonsenseExample("ARC-Easy", "Which gas?", ("oxygen", "argon", "neon", "xenon", "radon"), 4),
        "Please choose the correct answer to the question: Which gas?\n\nAnswer1: oxygen Answer2: argon Answer3: neon "
        "Answer4: xenon Answer5: radon\n\nAnswer format: answer1/answer2/answer3/answer4/answer5",
        "answer5",
    ),
    (
        CommonsenseExample(
            "obqa",
            "There is most likely going to be fog around:",
            ("a marsh", "a tundra", "the plains", "a desert"),
            0,
        ),
        "Please choose the correct answer to the question: There is most likely going to be fog around:\n\nAnswer1: "
        "a marsh Answer2: a tundra Answer3: the plains Answer4: a desert\n\nAnswer format: answer1/answer2/answer3/answer4",
        "answer1",
    ),
]


@pytest.mark.parametrize(("example", "instruction", "answer"), CASES, ids=[case[0].task for case in CASES])
def test_rendering_matches_llm_adapters(example: CommonsenseExample, instruction: str, answer: str) -> None:
    assert example.instruction() == instruction
    assert example.answer == answer
    assert example.to_record() == {
        "instruction": instruction,
        "input": "",
        "output": f"the correct answer is {answer}",
        "answer": answer,
        "task": example.task,
    }


def test_aliases_resolve_to_canonical_names() -> None:
    assert resolve_task("SIQA").name == "social_i_qa"
    assert resolve_task("ARC-Challenge").name == "arc_challenge"
    assert resolve_task("ARC-c").name == "arc_challenge"
    assert resolve_task("OBQA").name == "openbookqa"
    assert CASES[2][0].task == "social_i_qa"


def test_unknown_task_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown commonsense task 'mmlu'"):
        resolve_task("mmlu")
    with pytest.raises(ConfigError, match="'mmlu'"):
        load_task("mmlu", "test")


def test_bad_split_and_source_are_named() -> None:
    with pytest.raises(ConfigError, match="'split'.*'validation'"):
        load_task("boolq", "validation")
    with pytest.raises(ConfigError, match="'source'.*'hub'"):
        load_task("boolq", "test", source="hub")


def test_gold_and_choice_count_are_checked_with_origin() -> None:
    with pytest.raises(DataFormatError, match="file.json, row 3: gold index 2 is outside the 2 choices"):
        CommonsenseExample("piqa", "goal", ("a", "b"), 2, origin="file.json, row 3")
    with pytest.raises(DataFormatError, match="hellaswag needs 4 to 4 choices, got 3"):
        CommonsenseExample("hellaswag", "ctx", ("a", "b", "c"), 0)


def test_label_sets_follow_the_llm_adapters_regexes() -> None:
    assert TASKS["boolq"].label_set == ("true", "false")
    assert TASKS["social_i_qa"].label_set == tuple(f"answer{i}" for i in range(1, 6))
    assert TASKS["hellaswag"].label_set == ("ending1", "ending2", "ending3", "ending4")
    assert TASKS["winogrande"].label_set == ("option1", "option2")


def test_task_order_and_names_match_the_results_table() -> None:
    """The tasks are defined once (`gatera_lab.evaluation.commonsense_task_names`); the data adds their details."""
    from gatera_lab.datamodules import commonsense_examples

    assert tuple(COMMONSENSE_COLUMNS) == TASK_NAMES
    assert [spec.display for spec in TASKS.values()] == list(COMMONSENSE_COLUMNS.values())
    assert set(commonsense_examples._TASK_DATA) == set(COMMONSENSE_COLUMNS)  # no task's details left over
