"""Evaluation on a tiny Llama with a character tokenizer: scoring, generation matching, metrics, tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from gatera_lab import build_method
from gatera_lab.datamodules.commonsense_eval_items import eval_items_from_examples, eval_items_from_records
from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES, CommonsenseExample, DataFormatError
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import (
    EvalCollator,
    TaskAccuracy,
    evaluate_batch,
    evaluate_items,
    first_label_match,
    generate_responses,
    generation_matching,
    labels_from_instruction,
    render_table,
    score_candidates,
    tokenize_eval_item,
    write_results_csv,
    write_results_json,
)
from tests.conftest import make_tiny_llama
from tests.helpers.char_tokenizer import make_char_tokenizer


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models run fastest on one thread; with busy cores, OpenMP threads waiting on each other cost 50x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def char_tokenizer() -> PreTrainedTokenizerFast:
    return make_char_tokenizer()


EXAMPLES = [
    CommonsenseExample("boolq", "is it?", ("true", "false"), 1),
    CommonsenseExample("piqa", "Open a jar", ("Twist.", "Pull hard on it."), 0),
    CommonsenseExample("social_i_qa", "Why?", ("a", "b", "c"), 2, "Kai left early."),
    CommonsenseExample(
        "arc_easy", "Which gas is inert and glows in signs?", ("oxygen", "neon", "water", "iron"), 1
    ),
]


def manual_scores(model: torch.nn.Module, item) -> list[float]:
    """Sum of label-token log-probs from one unpadded forward per candidate."""
    scores = []
    for ids, start in zip(item.candidate_ids, item.score_starts, strict=True):
        sequence = torch.tensor([item.prompt_ids + ids])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(sequence).logits[0].float(), -1)
        offset = len(item.prompt_ids)
        scores.append(sum(float(log_probs[offset + j - 1, ids[j]]) for j in range(start, len(ids))))
    return scores


def test_items_mark_label_tokens_after_the_response_prefix(char_tokenizer) -> None:
    item = tokenize_eval_item("Q", ["answer1", "answer22"], 1, char_tokenizer, task_index=3)
    prefix = len("the correct answer is")
    assert item.score_starts == [prefix, prefix]  # the space before the label is part of the label tokens
    assert char_tokenizer.decode(item.candidate_ids[1][item.score_starts[1] :]) == " answer22"
    assert (item.gold, item.task_index, item.label_set) == (1, 3, ("answer1", "answer22"))
    with pytest.raises(ConfigError, match="gold index 2 is outside the 2 labels"):
        tokenize_eval_item("Q", ["a", "b"], 2, char_tokenizer)
    truncated = tokenize_eval_item("x" * 50, ["a"], 0, char_tokenizer, max_prompt_length=10)
    assert len(truncated.prompt_ids) == 10


def test_labels_from_instruction() -> None:
    assert labels_from_instruction(EXAMPLES[2].instruction()) == ("answer1", "answer2", "answer3")
    assert labels_from_instruction(CommonsenseExample("winogrande", "_", ("x", "y"), 0).instruction()) == (
        "option1",
        "option2",
    )
    with pytest.raises(ConfigError, match="row 5: no 'Answer format"):
        labels_from_instruction("no format", "row 5")


def test_collator_left_pads_prompts_and_right_pads_candidates(char_tokenizer) -> None:
    items = eval_items_from_examples(EXAMPLES, char_tokenizer)
    batch = EvalCollator(pad_token_id=2)(items)
    lengths = [len(item.prompt_ids) for item in items]
    assert batch["input_ids"].shape == (4, max(lengths))
    assert batch["attention_mask"].sum(-1).tolist() == lengths
    assert batch["attention_mask"][:, -1].all()  # left padding: every prompt ends at the last column
    assert batch["candidate_ids"].shape[:2] == (4, 4)
    assert batch["candidate_mask"].any(-1).sum(-1).tolist() == [2, 2, 3, 4]
    assert batch["gold"].tolist() == [1, 0, 2, 1]
    assert batch["task_index"].tolist() == [TASK_NAMES.index(e.task) for e in EXAMPLES]
    assert batch["label_sets"][2] == tuple(f"answer{i}" for i in range(1, 6))


@pytest.mark.parametrize("gated", [False, True], ids=["plain", "hira_gate"])
def test_scores_equal_unpadded_log_likelihoods(char_tokenizer, gated: bool) -> None:
    model = make_tiny_llama(seed=1)
    if gated:
        build_method("hira_gate", r=4).apply(model)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.05)
    items = eval_items_from_examples(EXAMPLES, char_tokenizer)
    batch = EvalCollator(pad_token_id=2)(items)
    cached = score_candidates(model, batch, use_cache=True)
    full = score_candidates(model, batch, use_cache=False)
    for row, item in enumerate(items):
        expected = torch.tensor(manual_scores(model, item))
        torch.testing.assert_close(cached[row, : len(expected)], expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(full[row, : len(expected)], expected, atol=1e-4, rtol=1e-4)
        assert torch.isinf(cached[row, len(expected) :]).all()
    output = evaluate_batch(model, batch)
    assert torch.equal(output.predicted, cached.argmax(-1))
    assert torch.equal(output.correct, output.predicted == batch["gold"])


def test_first_label_match_follows_llm_adapters() -> None:
    answers = [f"answer{i}" for i in range(1, 6)]
    assert first_label_match("The correct answer is answer3, not answer1", answers) == "answer3"
    assert first_label_match("I think true. Or false.", ["true", "false"]) == "true"
    assert first_label_match("Solution 2", ["solution1", "solution2"]) is None
    assert first_label_match("option10", ["option1", "option10"]) == "option10"


def test_generation_predictions(char_tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    items = eval_items_from_examples(EXAMPLES, char_tokenizer)
    batch = EvalCollator(pad_token_id=2)(items)
    responses = ["the correct answer is false", "nothing", "the correct answer is answer5", "answer2 I think"]
    monkeypatch.setattr(generation_matching, "generate_responses", lambda *args, **kwargs: responses)
    output = evaluate_batch(make_tiny_llama(), batch, protocol="generation", tokenizer=char_tokenizer)
    assert output.predicted.tolist() == [1, -1, -1, 1]  # answer5 is not a candidate of a 3-answer row
    assert output.correct.tolist() == [True, False, False, True]
    with pytest.raises(ConfigError, match="needs the tokenizer"):
        evaluate_batch(make_tiny_llama(), batch, protocol="generation")
    with pytest.raises(ConfigError, match="'protocol'.*'beam'"):
        evaluate_batch(make_tiny_llama(), batch, protocol="beam")


def test_left_padded_generation_equals_single_generation(char_tokenizer) -> None:
    model = make_tiny_llama(seed=2)
    items = eval_items_from_examples(EXAMPLES[:3], char_tokenizer)
    collate = EvalCollator(pad_token_id=2)
    together = generate_responses(model, char_tokenizer, collate(items), max_new_tokens=6)
    alone = [
        generate_responses(model, char_tokenizer, collate([item]), max_new_tokens=6)[0] for item in items
    ]
    assert together == alone
    assert all(0 < len(response) <= 6 for response in together)


def test_task_accuracy_per_task_and_average() -> None:
    metric = TaskAccuracy(["a", "b", "c"])
    metric.update(torch.tensor([0, 0, 1, 1, 1, 0]), torch.tensor([True, False, True, True, False, True]))
    result = {name: round(float(value), 4) for name, value in metric.compute().items()}
    assert result == {"a": 0.6667, "b": 0.6667, "avg": 0.6667}  # task c has no rows: left out of the mean
    metric.update(torch.tensor([2]), torch.tensor([False]))
    assert float(metric.compute()["avg"]) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert metric.counts() == {"a": (2, 3), "b": (2, 3), "c": (0, 1)}
    with pytest.raises(ConfigError, match="task_index must lie in 0..2"):
        metric.update(torch.tensor([3]), torch.tensor([True]))


def test_evaluate_items_matches_the_batch_scores(char_tokenizer) -> None:
    model = make_tiny_llama(seed=3)
    items = eval_items_from_examples(EXAMPLES, char_tokenizer)
    accuracies, counts, outputs = evaluate_items(model, char_tokenizer, items, TASK_NAMES, batch_size=3)
    correct = [
        max(range(len(item.labels)), key=lambda k: manual_scores(model, item)[k]) == item.gold
        for item in items
    ]
    assert {task: counts[task][0] for task in counts} == {
        e.task: int(c) for e, c in zip(EXAMPLES, correct, strict=True)
    }
    assert accuracies["avg"] == pytest.approx(sum(correct) / 4)
    assert sum(len(output.predicted) for output in outputs) == 4


def test_records_with_bad_task_or_answer_are_named(char_tokenizer) -> None:
    record = EXAMPLES[0].to_record()
    with pytest.raises(DataFormatError, match="val, row 0: task 'mmlu' is not one of"):
        eval_items_from_records([{**record, "task": "mmlu"}], char_tokenizer, origin="val")
    with pytest.raises(DataFormatError, match="val, row 0: answer 'maybe' is not one of the labels"):
        eval_items_from_records([{**record, "answer": "maybe"}], char_tokenizer, origin="val")
    with pytest.raises(DataFormatError, match="val: no records"):
        eval_items_from_records([], char_tokenizer, origin="val")


RESULTS = {
    "LoRA": {"boolq": 0.708, "piqa": 0.852, "social_i_qa": 0.799, "hellaswag": 0.917, "winogrande": 0.843,
             "arc_easy": 0.842, "arc_challenge": 0.712, "openbookqa": 0.79},
    "subset": {"piqa": 0.5, "arc_easy": 0.25},
}  # fmt: skip


def test_table_columns_average_and_missing_tasks() -> None:
    table = render_table(RESULTS)
    lines = table.splitlines()
    assert lines[0] == "| Model | BoolQ | PIQA | SIQA | HellaSwag | WinoGrande | ARC-e | ARC-c | OBQA | Avg |"
    assert lines[2] == "| LoRA | 70.80 | 85.20 | 79.90 | 91.70 | 84.30 | 84.20 | 71.20 | 79.00 | 80.79 |"
    assert lines[3] == "| subset | - | 50.00 | - | - | - | 25.00 | - | - | 37.50* |"
    assert "average over the tasks present" in table


def test_csv_and_json_writers_are_atomic(tmp_path: Path) -> None:
    csv_path = write_results_csv(tmp_path / "out" / "table.csv", RESULTS)
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == [
        "name",
        "BoolQ",
        "PIQA",
        "SIQA",
        "HellaSwag",
        "WinoGrande",
        "ARC-e",
        "ARC-c",
        "OBQA",
        "Avg",
    ]
    assert rows[1][-1] == "80.79" and rows[2] == ["subset", "", "50.00", "", "", "", "25.00", "", "", "37.50"]
    json_path = write_results_json(tmp_path / "out" / "results.json", {"results": RESULTS})
    assert json.loads(json_path.read_text()) == {"results": RESULTS}
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["results.json", "table.csv"]
    (tmp_path / "blocked").write_text("")
    with pytest.raises(OSError):
        write_results_json(tmp_path / "blocked" / "x.json", {})
