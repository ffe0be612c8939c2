"""The inputs of `benchmarks/gpu_check.py`, built offline: a random Llama-shaped model folder with a
character-level tokenizer, and a small LLM-Adapters data folder (BoolQ- and PIQA-like rows)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from benchmarks.models import build_base_model, model_config
from gatera_lab.datamodules.commonsense_tasks import CommonsenseExample

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (ids below 104: any preset's vocabulary holds them)."""
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + list(string.printable))}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def write_model_folder(folder: Path, preset: str, layers: int | None) -> Path:
    """A random ``preset``-shaped Llama saved in bfloat16 with the character tokenizer."""
    model = build_base_model(model_config(preset, layers), torch.bfloat16, torch.device("cpu"), seed=0)
    tokenizer = char_tokenizer()
    model.config.pad_token_id, model.config.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _example(task: str, index: int) -> CommonsenseExample:
    if task == "boolq":
        return CommonsenseExample("boolq", f"is {index} an even number", ("true", "false"), index % 2)
    return CommonsenseExample("piqa", f"to open jar {index}", (f"twist lid {index}", "push it"), index % 2)


def _records(task: str, rows: range) -> list[dict]:
    return [{k: v for k, v in _example(task, i).to_record().items() if k != "task"} for i in rows]


def write_data_folder(folder: Path, train_rows: int = 48, test_rows: int = 16) -> Path:
    """``commonsense_170k.json`` (training) and ``<task>/test.json`` for BoolQ and PIQA."""
    folder.mkdir(parents=True, exist_ok=True)
    half = train_rows // 2
    training = _records("boolq", range(half)) + _records("piqa", range(half))
    (folder / "commonsense_170k.json").write_text(json.dumps(training))
    for task in ("boolq", "piqa"):
        (folder / task).mkdir(exist_ok=True)
        (folder / task / "test.json").write_text(json.dumps(_records(task, range(1000, 1000 + test_rows))))
    return folder
