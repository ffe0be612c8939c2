"""A user's own data: JSON / JSONL / ``datasets`` files, prompt templates, and a multiple-choice test file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from gatera_lab.cli import main
from gatera_lab.datamodules import InstructionDataModule
from gatera_lab.datamodules.instruction_data import tokenize_instruction
from gatera_lab.datamodules.instruction_records import InstructionFields, prompt_records
from gatera_lab.datamodules.prompt_templates import PromptTemplate
from gatera_lab.datamodules.record_files import read_record_file
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import evaluate_batch
from gatera_lab.evaluation.row_outcomes import row_outcomes
from tests.conftest import make_tiny_llama
from tests.helpers.char_tokenizer import make_char_tokenizer

RECORDS = [
    {"question": f"Is {index} even?", "context": "" if index % 2 else "Think.", "answer": str(index % 2 == 0)}
    for index in range(6)
]
MC_ROWS = [
    {"question": "2+2?", "choices": ["4", "5", "22"], "gold": 0},
    {"question": "Sky?", "choices": ["blue", "green"], "gold": 0, "task": "colours"},
    {"question": "Grass?", "choices": ["red", "green"], "gold": 1, "task": "colours"},
    {"prompt": "Q: 1+1?\nA:", "choices": ["2", "3"], "gold": 0},
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_json_jsonl_saved_dataset_and_parquet_read_the_same_records(tmp_path):
    import datasets

    dataset = datasets.Dataset.from_list(RECORDS)
    dataset.save_to_disk(str(tmp_path / "saved"))
    dataset.to_parquet(str(tmp_path / "rows.parquet"))
    (tmp_path / "rows.json").write_text(json.dumps(RECORDS))
    write_jsonl(tmp_path / "rows.jsonl", RECORDS)
    for name in ("rows.json", "rows.jsonl", "saved", "rows.parquet"):
        assert read_record_file(tmp_path / name).records == RECORDS, name
    assert read_record_file(tmp_path / "rows.jsonl").places[2] == f"{tmp_path / 'rows.jsonl'}, line 3"


def test_bad_jsonl_line_and_bad_field_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n\n" + '{"question": "Is 1 even?", \n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl, line 3: not valid JSON"):
        read_record_file(path)
    write_jsonl(path, [RECORDS[0], {"question": "Is 1 even?"}])
    fields = InstructionFields("question", "context", "answer")
    with pytest.raises(ConfigError, match=r"bad\.jsonl, line 2: field 'answer' is missing"):
        prompt_records(read_record_file(path), fields, PromptTemplate("alpaca"), make_char_tokenizer())
    (tmp_path / "rows.txt").write_text("{}")
    with pytest.raises(ConfigError, match=r"rows\.txt': unknown format '\.txt'; use one of \.json, \.jsonl"):
        read_record_file(tmp_path / "rows.txt")


def test_chat_template_masks_the_output_and_the_end_of_turn_only(tmp_path):
    tokenizer = make_char_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE  # a turn ends with "</s>\n": the end of turn is "</s>"
    fields = InstructionFields("question", "context", "answer")
    (record,) = prompt_records(
        read_record_file(write_jsonl(tmp_path / "rows.jsonl", RECORDS[:1])),
        fields,
        PromptTemplate("chat"),
        tokenizer,
    )
    assert record["prompt"] == "<user>Is 0 even?\n\nThink.</s>\n<assistant>"
    example = tokenize_instruction(record, tokenizer, max_length=None)
    response = [
        token
        for token, in_response in zip(example.input_ids, example.response_mask, strict=True)
        if in_response
    ]
    assert response == [*tokenizer("True", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    assert example.input_ids[: -len(response)] == tokenizer(record["prompt"])["input_ids"]
    without_template = make_char_tokenizer()
    with pytest.raises(
        ConfigError, match=r"'prompt_template' is 'chat', but the tokenizer .* has no chat template"
    ):
        PromptTemplate("chat").prompt("Hi", "", without_template)


def test_format_string_templates_and_their_errors():
    template = PromptTemplate("Q: {instruction}\nContext: {input}\nA:")
    assert template.prompt("Why?", "Because.", make_char_tokenizer()) == "Q: Why?\nContext: Because.\nA:"
    assert PromptTemplate("plain").prompt("Why?", "Because.", None) == "Why?\n\nBecause."
    cases = {
        "Q: {question}\nA:": r"option 'prompt_template': unknown placeholder \{question\}",
        "Context: {input}\nA:": r"option 'prompt_template' must be one of alpaca, chat, plain or a format "
        r"string containing \{instruction\}",
        "Q: {instruction": r"option 'prompt_template': .* is not a valid format string",
        "{0} {instruction}": r"unknown placeholder \{0\}",
    }
    for spec, pattern in cases.items():
        with pytest.raises(ConfigError, match=pattern):
            InstructionDataModule("unused.jsonl", prompt_template=spec)


def test_multiple_choice_file_is_scored_through_the_test_loader(tiny_model_dir, tmp_path):
    path = write_jsonl(tmp_path / "quiz.jsonl", MC_ROWS)
    data = InstructionDataModule(
        tokenizer=str(tiny_model_dir),
        test_file=str(path),
        prompt_template="Q: {instruction}\nA:",
        eval_batch_size=3,
    )
    data.setup("test")
    assert data.task_names == ("quiz", "colours")
    model = make_tiny_llama()
    outputs = [evaluate_batch(model, batch) for batch in data.test_dataloader()]
    rows = {row["row_id"]: row for row in row_outcomes(outputs, data.task_names)}
    assert sorted(rows) == ["colours/0", "colours/1", "quiz/0", "quiz/1"]
    assert [rows[name]["gold"] for name in ("quiz/0", "colours/0", "colours/1", "quiz/1")] == [0, 0, 1, 0]
    assert rows["colours/1"]["task"] == "colours" and len(rows["quiz/0"]["scores"]) == 3
    # a choice's score is the log-likelihood of " " + choice after the prompt (the template for questions,
    # a "prompt" field as it is)
    for row_id, prompt, choice, index in (
        ("colours/1", "Q: Grass?\nA:", " green", 1),
        ("quiz/1", "Q: 1+1?\nA:", " 3", 1),
    ):
        prompt_ids = data.tokenizer(prompt)["input_ids"]
        choice_ids = data.tokenizer(choice, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([[*prompt_ids, *choice_ids]])).logits[0]  # (T, V)
        log_probs = logits[len(prompt_ids) - 1 : -1].log_softmax(-1)  # (C, V)
        expected = log_probs[torch.arange(len(choice_ids)), torch.tensor(choice_ids)].sum()
        assert rows[row_id]["scores"][index] == pytest.approx(float(expected), abs=1e-3)
    write_jsonl(path, [MC_ROWS[0], {**MC_ROWS[1], "gold": 2}])
    with pytest.raises(ConfigError, match=r"quiz\.jsonl, line 2: field 'gold' is 2, outside the 2 choices"):
        InstructionDataModule(tokenizer=str(tiny_model_dir), test_file=str(path)).setup("test")


def test_fit_and_test_through_the_cli_with_own_files(tiny_model_dir, tmp_path, capsys):
    train = [{"instruction": f"Is {i} even?", "output": "yes" if i % 2 == 0 else "no"} for i in range(8)]
    config = {
        "seed_everything": 1,
        "trainer": {
            "max_steps": 1,
            "limit_val_batches": 1,
            "default_root_dir": str(tmp_path),
            "enable_progress_bar": False,
        },
        "model": {
            "model": str(tiny_model_dir),
            "method": {"class_path": "gatera_lab.methods.LoRA", "init_args": {"r": 4}},
        },
        "data": {
            "class_path": "gatera_lab.datamodules.InstructionDataModule",
            "init_args": {
                "train_file": str(write_jsonl(tmp_path / "train.jsonl", train)),
                "test_file": str(write_jsonl(tmp_path / "quiz.jsonl", MC_ROWS)),
                "prompt_template": "Q: {instruction}\nA:",
                "val_size": 2,
                "batch_size": 4,
                "max_length": 48,
            },
        },
    }
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(tmp_path / "my.yaml"), "--trainer.fast_dev_run", "1"]) == 0
    assert main(["fit", "--config", str(tmp_path / "my.yaml")]) == 0
    (checkpoint,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    capsys.readouterr()
    assert main(["test", "--config", str(tmp_path / "my.yaml"), "--ckpt_path", str(checkpoint)]) == 0
    assert "test/acc_colours" in capsys.readouterr().out
    run = tmp_path / "lightning_logs" / "version_1"
    results = json.loads((run / "test_results.json").read_text())
    assert {task: total for task, (_, total) in results["counts"].items()} == {"quiz": 2, "colours": 2}
    rows = [json.loads(line) for line in (run / "test_rows.jsonl").read_text().splitlines()]
    assert [row["row_id"] for row in rows] == ["colours/0", "colours/1", "quiz/0", "quiz/1"]
