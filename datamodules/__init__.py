"""LightningDataModules and data helpers for instruction tuning and the commonsense tasks."""

from gatera_lab.datamodules.commonsense_datamodule import CommonsenseDataModule
from gatera_lab.datamodules.llm_adapters_json import LLMAdaptersJSONDataModule

__all__ = ["CommonsenseDataModule", "LLMAdaptersJSONDataModule"]
