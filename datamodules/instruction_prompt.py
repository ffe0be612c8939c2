"""The Alpaca-style prompt of LLM-Adapters; defined in `gatera_lab.prompt_format` (one place for the format)."""

from __future__ import annotations

from gatera_lab.prompt_format import PROMPT_WITH_INPUT, PROMPT_WITHOUT_INPUT, render_prompt

__all__ = ["PROMPT_WITHOUT_INPUT", "PROMPT_WITH_INPUT", "render_prompt"]
