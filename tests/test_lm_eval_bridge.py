"""``gatera-lab eval``: lm-evaluation-harness on a trained gated adapter, offline, on a local task.

The task (a YAML and a JSONL file written here) is multiple choice: the context is ``doc_to_text`` (the
question, no trailing space), each continuation ``target_delimiter + choice`` = ``" " + choice``. gatera-lab's
own choice scoring of the same rows uses the question as the prompt and ``" " + choice`` as each scored text
(`tokenize_choice_item` with empty leads). lm-eval tokenises ``context + continuation`` whole and splits it
after the context's tokens; gatera-lab tokenises the two apart. With the tiny model's character tokenizer
(one token per character, no special tokens added) both give the same tokens, so the per-row
log-likelihoods, and the choice each row picks (``acc``), must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lm_eval.api.instance import Instance

from gatera_lab.cli import main
from gatera_lab.evaluation import evaluate_items
from gatera_lab.evaluation.choice_text_items import tokenize_choice_item
from gatera_lab.evaluation.lm_eval_bridge import AdaptedModelLM
from gatera_lab.export.checkpoint_adapter import load_checkpoint_adapter
from gatera_lab.models.model_loading import load_causal_lm, load_tokenizer
from tests.helpers.tiny_fit import train_checkpoint

TASK = "tiny_sums"
ROWS = [
    {"question": f"{a}+{b}=", "choices": [str(a + b), str(a + b + 1), str(a * b + 10)], "label": index % 3}
    for index, (a, b) in enumerate(
        [(1, 2), (3, 4), (12, 30), (6, 1), (4, 4), (7, 15), (5, 3), (8, 1), (9, 9)]
    )
]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Neither datasets nor the Hub client may reach the network (the flags are read at import time), and
    datasets caches the local task's data under ``tmp_path``, not in the user's cache."""
    import datasets
    import huggingface_hub

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets_cache")
    for name in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(name, "1")
        monkeypatch.setattr(datasets.config, name, True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    """A folder with the multiple-choice task ``tiny_sums`` reading a local JSONL file."""
    folder = tmp_path_factory.mktemp("tasks")
    data = folder / "sums.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    (folder / f"{TASK}.yaml").write_text(
        f"task: {TASK}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{question}}"\n'
        'doc_to_choice: "{{choices}}"\n'
        "doc_to_target: label\n"
        'target_delimiter: " "\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )
    return folder


@pytest.fixture(scope="module")
def gated_ckpt(tiny_model_dir, instruction_file, tmp_path_factory) -> Path:
    """Two steps of hira_gate on the tiny model, adapter scaled by 30 so that it changes the scores."""
    path = tmp_path_factory.mktemp("eval") / "hira_gate.ckpt"
    train_checkpoint(tiny_model_dir, instruction_file, path, "hira_gate", adapter_scale=30)
    return path


def run_eval(argv: list[str], output: Path) -> dict:
    assert main(["eval", *argv, "--output", str(output), "--log-samples"]) == 0
    return json.loads(output.read_text())


def choice_scoring(model, tokenizer) -> dict[int, tuple[int, list[float]]]:
    """gatera-lab's own scoring of ROWS: ``{row: (predicted choice by acc, log-likelihoods)}``."""
    items = [
        tokenize_choice_item(
            row["question"],
            leads=[""] * len(row["choices"]),
            texts=[" " + choice for choice in row["choices"]],
            gold=row["label"],
            tokenizer=tokenizer,
            row_id=str(index),
        )
        for index, row in enumerate(ROWS)
    ]
    _, _, outputs = evaluate_items(model, tokenizer, items, [TASK], batch_size=4)
    return {
        int(row_id): (int(predicted), scores.tolist())
        for output in outputs
        for row_id, predicted, scores in zip(output.row_ids, output.predicted_acc, output.scores, strict=True)
    }


def lm_eval_rows(results: dict) -> dict[int, tuple[int, list[float], float]]:
    """lm-eval's per-row outputs: ``{doc_id: (argmax choice, log-likelihoods, acc)}``."""
    rows = {}
    for sample in results["samples"][TASK]:
        scores = [log_likelihood for log_likelihood, _ in sample["filtered_resps"]]
        rows[sample["doc_id"]] = (max(range(len(scores)), key=scores.__getitem__), scores, sample["acc"])
    return rows


def test_lm_eval_agrees_with_choice_scoring_on_the_gated_adapter(
    gated_ckpt, tiny_model_dir, task_dir, tmp_path, capsys
):
    argv = ["--ckpt", str(gated_ckpt), "--tasks", TASK, "--include-path", str(task_dir), "--batch-size", "4"]
    adapted = run_eval(argv, tmp_path / "adapted.json")
    table = capsys.readouterr().out
    assert TASK in table and "acc" in table
    assert adapted["gatera"]["adapter"] == "hira_gate"
    assert adapted["n-samples"][TASK]["effective"] == len(ROWS)

    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = load_checkpoint_adapter(gated_ckpt).model.eval()
    ours, theirs = choice_scoring(model, tokenizer), lm_eval_rows(adapted)
    assert sorted(theirs) == list(range(len(ROWS)))
    for index, (predicted, scores) in ours.items():
        their_choice, their_scores, acc = theirs[index]
        assert their_scores == pytest.approx(scores, abs=1e-4)
        assert their_choice == predicted
        assert acc == float(predicted == ROWS[index]["label"])
    accuracy = sum(predicted == ROWS[index]["label"] for index, (predicted, _) in ours.items()) / len(ROWS)
    assert adapted["results"][TASK]["acc,none"] == pytest.approx(accuracy)

    base = run_eval([*argv, "--base", "--limit", "3"], tmp_path / "base.json")  # the same base, no adapter
    assert base["gatera"]["adapter"] is None and base["n-samples"][TASK]["effective"] == 3
    base_scores = choice_scoring(load_causal_lm(str(tiny_model_dir)), tokenizer)
    for index, (_, scores, _) in lm_eval_rows(base).items():
        assert scores == pytest.approx(base_scores[index][1], abs=1e-4)
        assert scores != pytest.approx(ours[index][1], abs=1e-2)  # the adapter decides the scores above


def test_rolling_and_generation_follow_the_model(tiny_model_dir):
    model, tokenizer = load_causal_lm(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    lm = AdaptedModelLM(model, tokenizer, batch_size=2)
    text = "Is 7 even?"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([[lm.prefix_token_id, *ids[:-1]]])).logits[0]  # (T, V)
    expected = float(torch.log_softmax(logits, -1).gather(-1, torch.tensor(ids)[:, None]).sum())
    rolling = Instance("loglikelihood_rolling", {}, (text,), 0)
    assert lm.loglikelihood_rolling([rolling]) == [pytest.approx(expected, abs=1e-4)]
    windowed = AdaptedModelLM(model, tokenizer, max_length=4).loglikelihood_rolling([rolling])[0]
    assert windowed < 0 and windowed != pytest.approx(expected, abs=1e-4)  # three windows of 4 tokens

    # is_greedy: the model's own greedy tokens are, one changed token is not; a short and a long request
    with torch.no_grad():
        greedy = model.generate(torch.tensor([[lm.prefix_token_id, *ids]]), max_new_tokens=3, do_sample=False)
    greedy_ids = greedy[0, len(ids) + 1 :].tolist()
    changed = [*greedy_ids[:-1], (greedy_ids[-1] + 1) % 128]
    context = [lm.prefix_token_id, *ids]
    scores = lm._loglikelihood_tokens(
        [(None, context, greedy_ids), (None, context, changed), (None, [lm.prefix_token_id], ids)]
    )
    assert [greedy for _, greedy in scores[:2]] == [True, False]
    assert scores[2][0] == pytest.approx(expected, abs=1e-4)

    # two prompts of different lengths per option set (one left-padded batch each); "?" cuts the first one
    cases = [(prompt, until) for until in ("?", "\n") for prompt in ("Is 7 even?", "Q: 12+5")]
    requests = [
        Instance("generate_until", {}, (prompt, {"until": [until], "max_gen_toks": 6}), 0)
        for prompt, until in cases
    ]
    texts = lm.generate_until(requests)
    for (prompt, until), text in zip(cases, texts, strict=True):
        encoded = tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            output = model.generate(
                **encoded, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id
            )
        reference = tokenizer.decode(output[0, encoded["input_ids"].shape[1] :])
        assert text == reference.split(until)[0].split(tokenizer.eos_token)[0]
    assert texts[0] == "" and texts[2].startswith("?")  # cut before the stop string, and not cut


def test_bad_options_and_tasks_exit_2_with_one_line(gated_ckpt, task_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "missing.yaml").write_text(
        (task_dir / f"{TASK}.yaml").read_text().replace(TASK, "missing").replace("sums.jsonl", "absent.jsonl")
    )
    cases = [
        (["--ckpt", str(tmp_path / "none.ckpt"), "--tasks", TASK], "option --ckpt"),
        (["--ckpt", str(gated_ckpt), "--tasks", TASK, "--batch-size", "0"], "option --batch-size"),
        (
            ["--ckpt", str(gated_ckpt), "--tasks", TASK, "--include-path", str(tmp_path / "nope")],
            "--include-path",
        ),
        (["--tasks", TASK, "--include-path", str(task_dir)], "give --ckpt"),
        (["--ckpt", str(gated_ckpt), "--tasks", "missing", "--include-path", str(broken)], "task 'missing'"),
    ]
    for argv, expected in cases:
        assert main(["eval", *argv]) == 2, argv
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith("gatera-lab eval: error: ") and expected in error
