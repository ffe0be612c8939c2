"""LightningDataModules and data helpers for instruction tuning and the commonsense tasks."""

from gatera_lab.datamodules.commonsense_datamodule import CommonsenseDataModule
from gatera_lab.datamodules.instruction_datamodule import InstructionDataModule
from gatera_lab.datamodules.llm_adapters_json import LLMAdaptersJSONDataModule

__all__ = ["CommonsenseDataModule", "InstructionDataModule", "LLMAdaptersJSONDataModule"]
