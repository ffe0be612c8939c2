"""The choice-text format: prompts from the data's fields, scored choice texts, acc / acc_norm, training rows."""

from __future__ import annotations

import pytest
import torch

from gatera_lab.datamodules.choice_text_format import choice_question, choice_record
from gatera_lab.datamodules.commonsense_eval_items import eval_items_from_examples
from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES, CommonsenseExample
from gatera_lab.datamodules.instruction_data import tokenize_instruction
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import EvalCollator, evaluate_batch, score_candidates
from gatera_lab.evaluation.row_outcomes import metric_accuracies, row_outcomes
from tests.conftest import make_tiny_llama
from tests.helpers.char_tokenizer import make_char_tokenizer

EXAMPLES = [
    CommonsenseExample("piqa", "open a jar", ("twist the lid", "hit it with a very large hammer"), 0),
    CommonsenseExample("winogrande", "Sam gave Al a gift because _ was kind.", ("Sam", "Al"), 0),
    CommonsenseExample("boolq", "is the sky blue?", ("true", "false"), 0, context="The sky is blue."),
    CommonsenseExample("social_i_qa", "What next?", ("eat", "sleep", "run"), 2, context="Kim was tired."),
]


@pytest.fixture(scope="module")
def tokenizer():
    return make_char_tokenizer()


def test_prompts_come_from_the_fields() -> None:
    piqa, winogrande, boolq, siqa = (choice_question(example) for example in EXAMPLES)
    assert (
        piqa.prompt == "Question: open a jar\nAnswer:"
        and piqa.continuations[1] == " hit it with a very large hammer"
    )
    assert winogrande.prompt == "Sam gave Al a gift because" and winogrande.leads == (" Sam", " Al")
    assert winogrande.continuations == (" was kind.", " was kind.") and not winogrande.length_normalised
    assert boolq.prompt == "The sky is blue.\nQuestion: is the sky blue?\nAnswer:"
    assert boolq.continuations == (" yes", " no") and siqa.prompt.startswith(
        "Question: Kim was tired. What next?"
    )
    assert piqa.length_normalised and siqa.length_normalised


def test_scores_are_the_choice_texts_log_likelihoods(tokenizer) -> None:
    """Each score equals the log-probability of the scored text after prompt (and lead), computed unpadded."""
    model = make_tiny_llama(seed=3)
    items = eval_items_from_examples(
        EXAMPLES, tokenizer, record_format="choice_text", row_ids=["a", "b", "c", "d"]
    )
    batch = EvalCollator(pad_token_id=2)(items)
    scores = score_candidates(model, batch)
    for row, item in enumerate(items):
        for choice, (ids, start) in enumerate(zip(item.candidate_ids, item.score_starts, strict=True)):
            sequence = torch.tensor([item.prompt_ids + ids])
            with torch.no_grad():
                log_probs = torch.log_softmax(model(sequence).logits[0, :-1].float(), -1)
            targets = sequence[0, 1:]
            first = len(item.prompt_ids) + start - 1  # position predicting the first scored token
            expected = log_probs[torch.arange(first, len(targets)), targets[first:]].sum()
            torch.testing.assert_close(scores[row, choice], expected, atol=1e-4, rtol=1e-4)
    output = evaluate_batch(model, batch)
    norm = (scores / batch["candidate_chars"]).argmax(-1)
    assert torch.equal(output.predicted_acc, scores.argmax(-1)) and torch.equal(
        output.predicted_acc_norm, norm
    )
    expected = torch.where(batch["length_normalised"], norm, scores.argmax(-1))
    assert torch.equal(output.predicted, expected)
    rows = row_outcomes([output], TASK_NAMES)
    assert [row["row_id"] for row in rows] == ["a", "b", "c", "d"] and len(rows[3]["scores"]) == 3
    assert metric_accuracies(rows, "acc")["piqa"] == float(rows[0]["acc"] == 0)


def test_generation_is_refused_for_choice_texts(tokenizer) -> None:
    items = eval_items_from_examples(EXAMPLES[:1], tokenizer, record_format="choice_text")
    with pytest.raises(ConfigError, match="choice_text"):
        evaluate_batch(make_tiny_llama(), EvalCollator(2)(items), protocol="generation", tokenizer=tokenizer)


def test_training_row_is_the_scored_gold_text(tokenizer) -> None:
    """The training response is the gold lead and text, no eos: its loss is what evaluation ranks by."""
    record = choice_record(EXAMPLES[1])
    example = tokenize_instruction(record, tokenizer, max_length=None)
    item = eval_items_from_examples(EXAMPLES[1:2], tokenizer, record_format="choice_text")[0]
    assert example.input_ids == item.prompt_ids + item.candidate_ids[0]
    assert sum(example.response_mask) == len(item.candidate_ids[0])
    assert example.input_ids[-1] != tokenizer.eos_token_id


def test_length_grouped_order_is_seeded_grouped_and_complete() -> None:
    from gatera_lab.datamodules.epoch_seeded_sampler import EpochSeededSampler

    lengths = [(index * 37) % 101 for index in range(203)]
    first = list(EpochSeededSampler(203, seed=5, lengths=lengths, batch_size=4, num_replicas=1, rank=0))
    again = list(EpochSeededSampler(203, seed=5, lengths=lengths, batch_size=4, num_replicas=1, rank=0))
    other = list(EpochSeededSampler(203, seed=6, lengths=lengths, batch_size=4, num_replicas=1, rank=0))
    assert first == again and first != other and sorted(first) == list(range(203))
    spread = [
        max(lengths[i] for i in first[k : k + 4]) - min(lengths[i] for i in first[k : k + 4])
        for k in range(0, 200, 4)
    ]
    assert sum(spread) / len(spread) < 10  # random batches of 4 would spread about 50 tokens
    ranks = [
        list(EpochSeededSampler(203, seed=5, lengths=lengths, batch_size=4, num_replicas=2, rank=r))
        for r in (0, 1)
    ]
    for k in range(0, 96, 4):  # the two ranks' k-th batches come from one group of 8
        together = [lengths[i] for i in ranks[0][k : k + 4] + ranks[1][k : k + 4]]
        assert max(together) - min(together) < 25


def test_test_sample_is_seeded_and_keeps_row_ids() -> None:
    from gatera_lab.datamodules.scored_rows import select_indices

    sample = select_indices(1000, "piqa", None, 50, sample_seed=0)
    assert (
        sample == select_indices(1000, "piqa", None, 50, 0)
        and sample == sorted(sample)
        and len(set(sample)) == 50
    )
    assert sample != select_indices(1000, "piqa", None, 50, 1) and sample != select_indices(
        1000, "boolq", None, 50, 0
    )
    assert select_indices(30, "obqa", None, 50, 0) == list(range(30)) and select_indices(
        30, "obqa", 5, None, 0
    ) == list(range(5))


def test_gate_init_lets_the_entropy_act_from_the_first_step() -> None:
    """At w = 0, b = 0 every gate is 0.5, where dH/dz = 0; the default fan-in init gives a gradient."""
    from gatera_lab.adapters.token_gate import TokenGate, masked_gate_entropy

    x = torch.randn(2, 6, 32)
    grads = {}
    for name, std in (("zeros", 0.0), ("default", None)):
        torch.manual_seed(0)
        gate = TokenGate(32, weight_init_std=std)
        masked_gate_entropy([gate.logits(x).squeeze(-1)], torch.ones(2, 6)).backward()
        grads[name] = gate.weight.grad.abs().sum()
    assert grads["zeros"] == 0 and grads["default"] > 1e-3
