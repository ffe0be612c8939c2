"""Targets, ratios and the JSON / Markdown files a benchmark run writes (atomically)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gatera_lab.io.atomic_write import write_text_atomic

# (numerator, denominator, the ratio of median step times it should not exceed)
TIME_TARGETS = (
    ("lora", "peft_lora", 1.00),
    ("dora", "peft_dora", 0.85),
    ("hira", "peft_hira", 0.80),
    ("lora_gate", "lora", 1.05),
    ("dora_gate", "dora", 1.05),
    ("hira_gate", "peft_hira", 1.00),
)
# each of ours against PEFT's same method: memory ratio <= 1.00
MEMORY_TARGETS = (("lora", "peft_lora"), ("dora", "peft_dora"), ("hira", "peft_hira"))


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:,.1f}"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically and durably (`gatera_lab.io.atomic_write.write_text_atomic`)."""
    write_text_atomic(path, text)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return "ok" if value <= limit else "MISSED"
