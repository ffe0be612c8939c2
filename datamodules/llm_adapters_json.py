"""`LLMAdaptersJSONDataModule`: instruction tuning from a local LLM-Adapters JSON file."""

from __future__ import annotations

import random

import lightning as L
from torch.utils.data import DataLoader

from gatera_lab.datamodules.instruction_data import (
    TokenizedExample,
    read_instruction_file,
    tokenize_instruction,
)
from gatera_lab.datamodules.instruction_loaders import instruction_loader
from gatera_lab.datamodules.option_checks import require_at_least
from gatera_lab.datamodules.train_loader_state import TrainLoaderState
from gatera_lab.datamodules.truncation_report import TruncationReport, truncation_report, warn_truncation
from gatera_lab.errors import ConfigError


class LLMAdaptersJSONDataModule(TrainLoaderState, L.LightningDataModule):
    """Serves ``prompt + output`` sequences with a response mask, and a held-out validation split."""

    def __init__(
        self,
        train_file: str,
        tokenizer: str = "smollm2-135m-instruct",
        val_size: int = 120,
        max_length: int = 256,
        batch_size: int = 8,
        max_train_examples: int | None = None,
        num_workers: int = 0,
        seed: int = 42,
    ) -> None:
        """
        Args:
            train_file: a JSON list of ``{"instruction", "input", "output", "answer"}`` records (UTF-8, or
                UTF-16 with a byte-order mark).
            tokenizer: a model name or folder whose tokenizer to use (linked to ``model.model`` by the CLI).
            val_size: rows held out from ``train_file`` for validation (drawn with ``seed``); 0 for none
                (no validation loader: Lightning skips validation).
            max_length: longest sequence in tokens; longer ones lose tokens from the start of the prompt
                (``setup`` warns with the count of cut rows, also kept in ``truncation``).
            batch_size: sequences per batch.
            max_train_examples: keep at most this many training rows (after the validation split).
            num_workers: DataLoader worker processes.
            seed: seed of the validation split and of the shuffling order (per epoch).
        """
        super().__init__()
        require_at_least("val_size", val_size, 0)
        require_at_least("max_length", max_length, 2)
        require_at_least("batch_size", batch_size, 1)
        require_at_least("max_train_examples", max_train_examples, 1, none_means="all rows")
        require_at_least("num_workers", num_workers, 0)
        self.train_file = train_file
        self.tokenizer_name = tokenizer
        self.val_size = val_size
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_train_examples = max_train_examples
        self.num_workers = num_workers
        self.seed = seed
        self.tokenizer = None
        self.train_examples: list[TokenizedExample] = []
        self.val_examples: list[TokenizedExample] = []
        self.truncation: dict[str, TruncationReport] = {}  # per split, after setup

    def setup(self, stage: str | None = None) -> None:
        if self.train_examples:
            return
        from gatera_lab.model_loading import load_tokenizer

        self.tokenizer = load_tokenizer(self.tokenizer_name)
        records = read_instruction_file(self.train_file)
        order = list(range(len(records)))
        random.Random(self.seed).shuffle(order)
        val_rows, train_rows = order[: self.val_size], order[self.val_size :]
        if self.max_train_examples is not None:
            train_rows = train_rows[: self.max_train_examples]
        if not train_rows:
            raise ConfigError(
                f"{self.train_file}: no training rows left after holding out val_size={self.val_size} "
                f"of {len(records)} records"
            )
        self.train_examples = [self._tokenize(records[row]) for row in train_rows]
        self.val_examples = [self._tokenize(records[row]) for row in sorted(val_rows)]
        self.truncation = {
            "train": truncation_report(self.train_examples, "training", self.max_length),
            "validation": truncation_report(self.val_examples, "validation", self.max_length),
        }
        warn_truncation(list(self.truncation.values()), type(self).__name__)

    def _tokenize(self, record: dict[str, str]) -> TokenizedExample:
        return tokenize_instruction(record, self.tokenizer, self.max_length)

    def train_dataloader(self) -> DataLoader:
        loader = instruction_loader(
            self.train_examples, self.tokenizer, self.batch_size, self.num_workers, shuffle_seed=self.seed
        )
        return self.track_train_loader(loader)  # its place in the epoch is checkpointed (TrainLoaderState)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        """The held-out rows; no loader at all (``[]``, so Lightning skips validation) when ``val_size=0``."""
        if not self.val_examples:
            return []
        return instruction_loader(self.val_examples, self.tokenizer, self.batch_size, self.num_workers)
