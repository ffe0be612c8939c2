"""`read_prompts_file`: the prompts of ``gatera-lab generate --prompts-file FILE``.

Two layouts, told apart by the first non-empty line:

- JSON Lines (the first line starts with ``{``): one object per line with a ``"prompt"`` or an
  ``"instruction"`` field (and an optional ``"input"``, the LLM-Adapters/Alpaca context), e.g. the rows of
  an LLM-Adapters test file written one per line;
- plain text otherwise: one prompt per line.

Blank lines are skipped in both. A missing, unreadable or malformed file, or one without any prompt, is a
`ConfigError` that names the option, the file and (for JSON Lines) the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gatera_lab.errors import ConfigError

OPTION = "option --prompts-file"
PROMPT_FIELDS = ("prompt", "instruction")


@dataclass(frozen=True)
class Prompt:
    """One prompt: its text (the instruction) and the optional input that gives it context."""

    text: str
    input_text: str = ""


def read_prompts_file(path: str | Path) -> list[Prompt]:
    """The prompts in ``path`` (layouts in this module's docstring), in file order."""
    label = f"{OPTION}: {str(path)!r}"
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{label} does not exist")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{label} cannot be read as UTF-8 text ({error})") from error
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    if numbered and numbered[0][1].lstrip().startswith("{"):
        prompts = [_json_prompt(line, f"{label} line {number}") for number, line in numbered]
    else:
        prompts = [Prompt(line) for _, line in numbered]
    if not prompts:
        raise ConfigError(f"{label} holds no prompts")
    return prompts


def _json_prompt(line: str, where: str) -> Prompt:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where} is not a JSON object ({error})") from error
    if not isinstance(row, dict):
        raise ConfigError(f"{where} is not a JSON object")
    field = next((name for name in PROMPT_FIELDS if name in row), None)
    if field is None or not isinstance(row[field], str) or not row[field].strip():
        raise ConfigError(f"{where} has no non-empty string field 'prompt' or 'instruction'")
    input_text = row.get("input") or ""
    if not isinstance(input_text, str):
        raise ConfigError(f"{where}: field 'input' must be a string")
    return Prompt(row[field], input_text)
