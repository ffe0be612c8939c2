"""A tiny model folder (random Llama + character-level tokenizer) and LLM-Adapters JSON, built offline."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.gpu_check_inputs import char_tokenizer as make_char_tokenizer  # ids fit the tiny vocabulary
from tests.conftest import make_tiny_llama


def write_tiny_model_dir(path: Path, seed: int = 0) -> Path:
    """Save a tiny Llama and its tokenizer where ``from_pretrained(path)`` finds them."""
    model = make_tiny_llama(seed)
    tokenizer = make_char_tokenizer()
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_instruction_file(path: Path, rows: int = 24) -> Path:
    """Short BoolQ-like LLM-Adapters records."""
    records = []
    for index in range(rows):
        answer = "true" if index % 2 == 0 else "false"
        records.append(
            {
                "instruction": f"Is {index} even? Answer format: true/false",
                "input": "",
                "output": f"the correct answer is {answer}",
                "answer": answer,
            }
        )
    path.write_text(json.dumps(records))
    return path
