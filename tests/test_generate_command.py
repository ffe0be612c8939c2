"""``gatera-lab generate``: the same text as ``model.generate`` on the trained gated adapter; clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from gatera_lab.cli import main
from gatera_lab.evaluation.prompt_format import render_prompt
from gatera_lab.models.model_loading import load_causal_lm, load_tokenizer
from tests.helpers.tiny_fit import train_checkpoint

PROMPT = "Is 7 even?"


@pytest.fixture(scope="module")
def gated_fit(tiny_model_dir, instruction_file, tmp_path_factory):
    """``(checkpoint, adapted model)`` of two steps of hira_gate on the tiny model.

    The trained adapter tensors are then scaled by 30 (in the module, before it is saved): two steps barely
    move the tiny model's greedy text, and a scaled adapter changes it, so a generation that missed the
    adapter or its gates could not match.
    """
    path = tmp_path_factory.mktemp("generate") / "hira_gate.ckpt"
    _, module = train_checkpoint(tiny_model_dir, instruction_file, path, "hira_gate", adapter_scale=30)
    return path, module.model.eval()


def reference(model, tokenizer, text: str, max_new_tokens: int = 8) -> str:
    """Greedy ``model.generate`` on ``text``: the new tokens, decoded without special tokens, stripped."""
    encoded = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(
            **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_greedy_text_is_that_of_the_trained_gated_adapter(gated_fit, tiny_model_dir, tmp_path, capsys):
    ckpt, model = gated_fit
    tokenizer = load_tokenizer(str(tiny_model_dir))
    expected = reference(model, tokenizer, render_prompt(PROMPT))
    base = reference(load_causal_lm(str(tiny_model_dir)), tokenizer, render_prompt(PROMPT))
    assert expected and expected != base  # the adapter decides the text
    out = tmp_path / "responses.jsonl"
    argv = ["generate", "--ckpt", str(ckpt), "--prompt", PROMPT, "--max-new-tokens", "8", "--out", str(out)]
    assert main(argv) == 0
    assert capsys.readouterr().out == expected + "\n"
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"prompt": PROMPT, "response": expected}
    ]

    assert main([*argv[:-2], "--stream"]) == 0
    assert capsys.readouterr().out.strip() == expected


def test_the_base_model_alone_and_raw_prompts(tiny_model_dir, capsys):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    expected = reference(load_causal_lm(str(tiny_model_dir)), tokenizer, PROMPT, 6)
    assert main(["generate", "--base-model", str(tiny_model_dir), "--raw", "--prompt", PROMPT,
                 "--max-new-tokens", "6"]) == 0  # fmt: skip
    assert capsys.readouterr().out == expected + "\n"


def test_prompts_from_text_and_jsonl_files(gated_fit, tiny_model_dir, tmp_path, capsys):
    ckpt, model = gated_fit
    tokenizer = load_tokenizer(str(tiny_model_dir))
    lines = tmp_path / "prompts.txt"
    lines.write_text("Is 2 even?\n\nIs 3 even?\n")
    rows = tmp_path / "prompts.jsonl"
    rows.write_text(
        json.dumps({"instruction": "Is 4 even?", "input": "four", "answer": "true"})
        + "\n"
        + json.dumps({"prompt": "Is 5 even?"})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    argv = ["generate", "--ckpt", str(ckpt), "--prompts-file", str(lines), "--prompt", "Is 1 even?"]
    assert main([*argv, "--max-new-tokens", "8", "--out", str(out)]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["prompt"] for row in written] == ["Is 1 even?", "Is 2 even?", "Is 3 even?"]
    for row in written:
        assert row["response"] == reference(model, tokenizer, render_prompt(row["prompt"]))
    printed = capsys.readouterr().out
    assert printed == "\n\n".join(row["response"] for row in written) + "\n"

    argv = ["generate", "--ckpt", str(ckpt), "--prompts-file", str(rows), "--raw", "--out", str(out)]
    assert main([*argv, "--max-new-tokens", "8"]) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == [
        {
            "prompt": "Is 4 even?",
            "input": "four",
            "response": reference(model, tokenizer, "Is 4 even?\nfour"),
        },
        {"prompt": "Is 5 even?", "response": reference(model, tokenizer, "Is 5 even?")},
    ]


def test_sampling_with_a_seed_is_repeatable(tiny_model_dir, capsys):
    def sample(seed: int) -> str:
        argv = [
            "generate",
            "--base-model",
            str(tiny_model_dir),
            "--raw",
            "--prompt",
            PROMPT,
            "--max-new-tokens",
            "16",
        ]
        assert main([*argv, "--temperature", "1.5", "--top-p", "0.95", "--seed", str(seed)]) == 0
        return capsys.readouterr().out

    first = sample(3)
    assert sample(3) == first
    assert sample(4) != first  # it does sample: 16 tokens from a near-uniform distribution


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--ckpt", "{tmp}/missing.ckpt", "--prompt", "hi"],
            "option --ckpt: '{tmp}/missing.ckpt': checkpoint does not exist",
        ),
        (
            ["--ckpt", "{tmp}/foreign.ckpt", "--prompt", "hi"],
            "foreign.ckpt': no checkpoint['gatera'] metadata",
        ),
        (["--base-model", "{model}"], "no prompts: give --prompt TEXT"),
        (["--base-model", "{model}", "--prompt", " "], "option --prompt: a prompt is empty"),
        (["--prompt", "hi"], "give --ckpt CHECKPOINT"),
        (
            ["--base-model", "{model}", "--prompts-file", "{tmp}/none.txt"],
            "option --prompts-file: '{tmp}/none.txt'",
        ),
        (["--base-model", "{model}", "--prompts-file", "{tmp}/empty.txt"], "empty.txt' holds no prompts"),
        (
            ["--base-model", "{model}", "--prompts-file", "{tmp}/bad.jsonl"],
            "bad.jsonl' line 2 has no non-empty",
        ),
        (
            ["--base-model", "{model}", "--prompt", "hi", "--max-new-tokens", "0"],
            "option --max-new-tokens must be",
        ),
        (["--base-model", "{model}", "--prompt", "hi", "--top-p", "1.5"], "option --top-p must be in (0, 1]"),
        (
            ["--base-model", "{model}", "--prompt", "hi", "--max-new-tokens", "1", "--out", "{tmp}"],
            "option --out",
        ),
    ],
)
def test_errors_exit_2_with_one_line_naming_the_option_or_file(
    options, message, tiny_model_dir, tmp_path, capsys
):
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "bad.jsonl").write_text('{"prompt": "ok"}\n{"text": "no prompt field"}\n')
    fill = {"tmp": str(tmp_path), "model": str(tiny_model_dir)}
    assert main(["generate", *[option.format(**fill) for option in options]]) == 2
    stderr = capsys.readouterr().err  # after the model loader's progress bar, if a model was loaded
    (error,) = [line for line in stderr.splitlines() if line.startswith("gatera-lab")]
    assert error.startswith("gatera-lab generate: error: ") and stderr.endswith(error + "\n")
    assert message.format(**fill) in error
