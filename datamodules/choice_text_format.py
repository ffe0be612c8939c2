"""The zero-shot choice-text format of the commonsense tasks (the lm-evaluation-harness / OLMES convention).

Each question becomes a plain-text prompt built from the data's own fields and, per choice, the text that
would continue it; the model's answer is the choice whose continuation it finds most likely. Nothing asks
the model to bind a symbol ("answer2") to a choice, which only much larger models do (OLMES, arXiv
2406.08446). Per task:

=========== ========================================================= ============================= ========
task        prompt                                                    continuation of choice k      reported
=========== ========================================================= ============================= ========
boolq       ``{passage}\\nQuestion: {question}?\\nAnswer:``            `` yes`` / `` no``            acc
piqa        ``Question: {goal}\\nAnswer:``                             `` {solution_k}``             acc_norm
social_i_qa ``Question: {context} {question}\\nAnswer:``               `` {answer_k}``               acc_norm
hellaswag   ``{activity}: {context}``                                  `` {ending_k}``               acc_norm
winogrande  the sentence up to the blank                               `` {option_k}`` (not scored)  acc
                                                                       + `` {rest of the sentence}``
arc_easy,   ``Question: {question}\\nAnswer:``                         `` {answer_k}``               acc_norm
arc_chall.,
openbookqa
=========== ========================================================= ============================= ========

A choice's score is ``s_k = sum_j log P(c_kj | prompt, lead_k, c_k<j)`` over the tokens ``c_k`` of its
scored continuation (``lead_k`` is WinoGrande's option, which conditions but is not scored: lm-eval's
partial scoring). ``acc`` predicts ``argmax_k s_k``; ``acc_norm`` predicts ``argmax_k s_k / chars_k``,
the score per character of the scored continuation without its leading space (lm-eval's length normalisation). The ``reported``
column is the metric each task's accuracy uses: ``acc`` where the continuations are single words (BoolQ)
or the scored text is shared (WinoGrande), ``acc_norm`` where choices differ in length.

A training record in this format is the prompt and, as the response, the gold choice's lead and
continuation, so the loss is ``-log P(gold text | prompt)``: the quantity the evaluation ranks by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gatera_lab.datamodules.commonsense_examples import CommonsenseExample, DataFormatError

RecordFormat = Literal["llm_adapters", "choice_text"]
LENGTH_NORMALISED_TASKS = frozenset(
    {"piqa", "social_i_qa", "hellaswag", "arc_easy", "arc_challenge", "openbookqa"}
)


@dataclass(frozen=True)
class ChoiceQuestion:
    """One question in the choice-text format: a prompt, per choice an unscored lead and a scored text."""

    task: str
    prompt: str
    leads: tuple[str, ...]  # conditioning text before the scored continuation ("" except WinoGrande)
    continuations: tuple[str, ...]  # scored text of each choice, with its leading space
    gold: int

    @property
    def length_normalised(self) -> bool:
        """Whether the task reports ``acc_norm`` (see the module docstring)."""
        return self.task in LENGTH_NORMALISED_TASKS


def choice_question(example: CommonsenseExample) -> ChoiceQuestion:
    """The choice-text form of ``example`` (templates in the module docstring)."""
    task, choices = example.task, tuple(" " + choice.strip() for choice in example.choices)
    leads = ("",) * len(choices)
    if task == "boolq":
        question = example.question.rstrip("?")
        prompt, choices = f"{example.context}\nQuestion: {question}?\nAnswer:", (" yes", " no")
    elif task == "hellaswag":
        prompt = example.question
    elif task == "winogrande":
        before, blank, after = example.question.partition("_")
        if not blank:
            raise DataFormatError(
                f"{example.origin or 'a winogrande example'}: the sentence has no '_' blank"
            )
        prompt, leads = before.rstrip(), choices
        choices = (" " + after.strip(),) * len(leads)
    elif task == "social_i_qa":
        prompt = f"Question: {example.context} {example.question}\nAnswer:"
    else:  # piqa, arc_easy, arc_challenge, openbookqa
        prompt = f"Question: {example.question}\nAnswer:"
    return ChoiceQuestion(task, prompt, leads, choices, example.gold)


def choice_record(example: CommonsenseExample, row_id: str = "") -> dict[str, Any]:
    """A training / evaluation record: ``prompt``, ``output`` (the gold lead and text), the choices, ``gold``.

    ``append_eos`` is False: the response ends where the scored text ends, so the training loss is exactly
    the negative log-likelihood that evaluation ranks the choices by.
    """
    question = choice_question(example)
    return {
        "task": question.task,
        "prompt": question.prompt,
        "output": question.leads[question.gold] + question.continuations[question.gold],
        "append_eos": False,
        "choice_leads": list(question.leads),
        "choice_texts": list(question.continuations),
        "gold": question.gold,
        "row_id": row_id,
    }


def example_record(
    example: CommonsenseExample, record_format: RecordFormat, row_id: str = ""
) -> dict[str, Any]:
    """``example`` as a record of ``record_format`` (the LLM-Adapters record or `choice_record`)."""
    if record_format == "choice_text":
        return choice_record(example, row_id)
    if record_format == "llm_adapters":
        return {**example.to_record(), "row_id": row_id}
    raise DataFormatError(f"option 'format' must be 'llm_adapters' or 'choice_text', got {record_format!r}")
