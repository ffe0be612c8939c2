"""The Alpaca-style prompt of LLM-Adapters, defined once in `gatera_lab.evaluation.prompt_format`."""

from __future__ import annotations

from gatera_lab.evaluation.prompt_format import PROMPT_WITH_INPUT, PROMPT_WITHOUT_INPUT, render_prompt

__all__ = ["PROMPT_WITHOUT_INPUT", "PROMPT_WITH_INPUT", "render_prompt"]
