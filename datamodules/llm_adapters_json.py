"""`LLMAdaptersJSONDataModule`: instruction tuning from a local LLM-Adapters JSON file.

The name of `InstructionDataModule` that configs and checkpoints written before it existed use (a
checkpoint keeps the DataModule's state under its class name); it takes the same options.
"""

from __future__ import annotations

from gatera_lab.datamodules.instruction_datamodule import InstructionDataModule


class LLMAdaptersJSONDataModule(InstructionDataModule):
    """Serves ``prompt + output`` sequences with a response mask, and a held-out validation split.

    The same DataModule as `InstructionDataModule`: LLM-Adapters records with the Alpaca prompt by default.
    """
