"""DataLoaders over tokenised instruction examples, shared by every instruction-tuning DataModule."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.epoch_seeded_sampler import EpochSeededSampler
from gatera_lab.datamodules.instruction_data import InstructionCollator, TokenizedExample
from gatera_lab.datamodules.resumable_loader import ResumableLoader


def padding_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The tokenizer's pad token, else its end-of-sequence token."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def instruction_loader(
    examples: list[TokenizedExample],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    num_workers: int,
    shuffle_seed: int | None = None,
    group_by_length: bool = False,
) -> DataLoader:
    """Right-padded batches of ``examples``; with ``shuffle_seed``, in an order drawn from (seed, epoch).

    With ``shuffle_seed`` the loader is a `ResumableLoader` over an `EpochSeededSampler` (this process's share
    under DDP): a checkpoint records its place in the epoch and a resumed fit continues from there; with
    ``group_by_length`` its batches hold rows of similar length (`gatera_lab.datamodules.length_grouping`).

    Each loader has its own ``generator``: a DataLoader without one draws its workers' base seed from the
    global RNG whenever it is iterated, so a resumed run (which starts a new iterator mid-epoch, and skips a
    validation that was due when its checkpoint was written) would shift the dropout masks of every later step.
    """
    collate_fn = InstructionCollator(padding_id(tokenizer))
    if shuffle_seed is None:
        return DataLoader(
            examples,
            batch_size=batch_size,
            collate_fn=collate_fn,
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(0),
        )
    return ResumableLoader(
        examples,
        batch_size=batch_size,
        sampler=EpochSeededSampler(
            len(examples),
            seed=shuffle_seed,
            lengths=[len(example.input_ids) for example in examples] if group_by_length else None,
            batch_size=batch_size,
        ),
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(shuffle_seed),
    )
