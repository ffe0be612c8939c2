"""`InstructionDataModule`: fine-tune on a user's own instruction file, test on a user's multiple-choice file.

- ``train_dataloader``: ``prompt + response`` sequences with a response mask (`InstructionCollator`),
  from ``train_file`` (JSON list, JSONL, or a local ``datasets`` file or folder: `record_files`), with the
  prompt of ``prompt_template`` (`prompt_templates`) and the fields ``instruction_field`` /
  ``input_field`` / ``output_field``.
- ``val_dataloader``: the loss on ``val_size`` rows held out from ``train_file`` (none when 0).
- ``test_dataloader``: evaluation batches (`EvalCollator`) of ``test_file``, a multiple-choice set scored
  by each choice's likelihood (`multiple_choice_file`); ``task_names`` orders their ``task_index`` (one
  accuracy per task in ``gatera-lab test``).
"""

from __future__ import annotations

import random

import lightning as L
from torch.utils.data import DataLoader

from gatera_lab.datamodules.instruction_data import TokenizedExample, tokenize_instruction
from gatera_lab.datamodules.instruction_loaders import instruction_loader, padding_id
from gatera_lab.datamodules.instruction_records import InstructionFields, prompt_records
from gatera_lab.datamodules.multiple_choice_file import read_multiple_choice_file
from gatera_lab.datamodules.option_checks import require_at_least
from gatera_lab.datamodules.prompt_templates import PromptTemplate
from gatera_lab.datamodules.record_files import read_record_file
from gatera_lab.datamodules.train_loader_state import TrainLoaderState
from gatera_lab.datamodules.truncation_report import TruncationReport, truncation_report, warn_truncation
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.choice_items import EvalCollator, EvalItem
from gatera_lab.evaluation.distributed_eval_sampler import DistributedEvalSampler


class InstructionDataModule(TrainLoaderState, L.LightningDataModule):
    """Serves ``prompt + output`` sequences with a response mask, a validation split and a test set."""

    def __init__(
        self,
        train_file: str | None = None,
        tokenizer: str = "smollm2-135m-instruct",
        val_size: int = 120,
        max_length: int = 256,
        batch_size: int = 8,
        max_train_examples: int | None = None,
        num_workers: int = 0,
        seed: int = 42,
        prompt_template: str = "alpaca",
        instruction_field: str = "instruction",
        input_field: str = "input",
        output_field: str = "output",
        test_file: str | None = None,
        eval_batch_size: int = 8,
        length_normalised: bool = True,
    ) -> None:
        """
        Args:
            train_file: training records: a JSON list (UTF-8, or UTF-16 with a byte-order mark), a JSONL
                file (one object per line), a ``.parquet`` / ``.arrow`` / ``.csv`` file or a folder written
                by ``Dataset.save_to_disk`` (these need the ``datasets`` package). Each record has an
                instruction, an optional input and an output (see the ``*_field`` options), or a
                ``prompt`` and an output. Needed to fit, not to test.
            tokenizer: a model name or folder whose tokenizer to use (linked to ``model.model`` by the CLI).
            val_size: rows held out from ``train_file`` for validation (drawn with ``seed``); 0 for none
                (no validation loader: Lightning skips validation).
            max_length: longest sequence in tokens; longer ones lose tokens from the start of the prompt
                (``setup`` warns with the count of cut rows, also kept in ``truncation``).
            batch_size: sequences per batch.
            max_train_examples: keep at most this many training rows (after the validation split).
            num_workers: DataLoader worker processes.
            seed: seed of the validation split and of the shuffling order (per epoch).
            prompt_template: ``alpaca`` (the LLM-Adapters template), ``chat`` (the tokenizer's chat
                template; responses end with its end of turn), ``plain`` (the instruction as it is), or a
                format string with ``{instruction}`` and optionally ``{input}``.
            instruction_field: the records' field holding the instruction.
            input_field: the records' field holding the optional input (context).
            output_field: the records' field holding the response to learn.
            test_file: a multiple-choice test set (same file kinds as ``train_file``), rows
                ``{"question", "choices": [...], "gold": index, "task"?}``, for ``gatera-lab test``.
            eval_batch_size: test rows per batch (each row carries all its choices).
            length_normalised: predict the test choice with the highest log-likelihood per character
                (else the highest log-likelihood).
        """
        super().__init__()
        require_at_least("val_size", val_size, 0)
        require_at_least("max_length", max_length, 2)
        require_at_least("batch_size", batch_size, 1)
        require_at_least("max_train_examples", max_train_examples, 1, none_means="all rows")
        require_at_least("num_workers", num_workers, 0)
        require_at_least("eval_batch_size", eval_batch_size, 1)
        for option, value in (("instruction_field", instruction_field), ("input_field", input_field)):
            if not value:
                raise ConfigError(f"option {option!r} must name a field, got {value!r}")
        if not output_field:
            raise ConfigError(f"option 'output_field' must name a field, got {output_field!r}")
        self.template = PromptTemplate(prompt_template)
        self.fields = InstructionFields(instruction_field, input_field, output_field)
        self.train_file, self.test_file = train_file, test_file
        self.tokenizer_name = tokenizer
        self.val_size, self.max_length = val_size, max_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_train_examples, self.num_workers, self.seed = max_train_examples, num_workers, seed
        self.length_normalised = length_normalised
        self.tokenizer = None
        self.train_examples: list[TokenizedExample] = []
        self.val_examples: list[TokenizedExample] = []
        self.test_items: list[EvalItem] = []
        self.task_names: tuple[str, ...] = ()  # of the test set, after setup("test")
        self.truncation: dict[str, TruncationReport] = {}  # per split, after setup

    def setup(self, stage: str | None = None) -> None:
        from gatera_lab.models.model_loading import load_tokenizer

        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.tokenizer_name)
        if stage in (None, "fit", "validate") and not self.train_examples:
            self._setup_training()
        if stage == "test" and self.test_file is None:
            raise ConfigError(f"option 'test_file' is not set: {type(self).__name__} has nothing to test on")
        if stage in (None, "test") and self.test_file is not None and not self.test_items:
            self.test_items, self.task_names = read_multiple_choice_file(
                self.test_file, self.template, self.tokenizer, self.length_normalised
            )

    def _setup_training(self) -> None:
        if self.train_file is None:
            raise ConfigError(f"option 'train_file' is not set: {type(self).__name__} needs it to fit")
        records = prompt_records(
            read_record_file(self.train_file), self.fields, self.template, self.tokenizer
        )
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

    def _tokenize(self, record: dict[str, object]) -> TokenizedExample:
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

    def test_dataloader(self) -> DataLoader:
        """Evaluation batches of ``test_file``, each row on one process under DDP (none repeated)."""
        return DataLoader(
            self.test_items,
            batch_size=self.eval_batch_size,
            sampler=DistributedEvalSampler(self.test_items),
            collate_fn=EvalCollator(padding_id(self.tokenizer)),
            num_workers=self.num_workers,
        )
