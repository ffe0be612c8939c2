"""A shuffling sampler whose order depends only on (seed, epoch) and whose place in the epoch is checkpointed."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from gatera_lab.datamodules.length_grouping import length_grouped_order
from gatera_lab.errors import CheckpointMismatchError


class EpochSeededSampler(DistributedSampler):
    """This rank's share of a permutation of ``range(size)`` drawn from ``seed + epoch``, from ``position`` on.

    Order of epoch ``e`` (`DistributedSampler`'s): ``torch.randperm(size)`` from a generator seeded with
    ``seed + e`` (``range(size)`` without shuffling), padded with its first indices to
    ``num_replicas * num_samples`` (``num_samples = ceil(size / num_replicas)``); rank ``r`` takes the
    indices at ``r, r + num_replicas, ...``. With one replica that is the permutation itself. Being a
    `DistributedSampler`, Lightning uses it as it is under DDP instead of wrapping it in a
    ``DistributedSamplerWrapper`` (which would reshuffle it and never pass ``set_epoch`` on).

    Place in the epoch: ``position`` of this rank's ``num_samples`` indices were already delivered
    (`ResumableLoader` advances it batch by batch); ``__iter__`` yields the rest, ``share[position:]``.
    ``set_epoch(e)`` with a new ``e`` starts epoch ``e`` at position 0 and with the current one keeps the
    position (Lightning calls it again after restoring a mid-epoch checkpoint); iterating a finished epoch
    starts the next one. ``state_dict`` / ``load_state_dict`` carry ``(epoch, position)`` through a checkpoint.

    With ``lengths`` the permutation is rearranged into length-sorted groups of ``batch_size *
    num_replicas`` rows in a random order (`gatera_lab.datamodules.length_grouping`): each rank's batch of
    ``batch_size`` consecutive indices comes from one group, so its rows have similar lengths.
    """

    def __init__(
        self,
        size: int,
        seed: int = 0,
        shuffle: bool = True,
        num_replicas: int | None = None,
        rank: int | None = None,
        lengths: Sequence[int] | None = None,
        batch_size: int = 1,
    ) -> None:
        """
        Args:
            size: number of examples.
            seed: seed of the order (epoch ``e`` uses ``seed + e``).
            shuffle: False for ``range(size)`` in every epoch.
            num_replicas: processes sharing the data (default: the initialised process group's size, else 1).
            rank: this process's index (default: its rank in the initialised process group, else 0).
            lengths: the rows' token counts, to group rows of similar length into batches (None: no grouping).
            batch_size: the loader's batch size (the size of a group on each rank).
        """
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        super().__init__(range(size), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        if lengths is not None and len(lengths) != size:
            raise ValueError(f"lengths has {len(lengths)} entries for {size} rows")
        self.size = size
        self.position = 0
        self.lengths, self.batch_size = lengths, batch_size

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def advance(self, count: int) -> None:
        """Record that ``count`` more indices of this epoch were delivered (clamped to the epoch's end)."""
        self.position = min(self.position + count, self.num_samples)

    def __iter__(self) -> Iterator[int]:
        if self.position >= self.num_samples and self.num_samples > 0:
            self.set_epoch(self.epoch + 1)
        share = self._epoch_share()  # (num_samples,) indices of epoch `self.epoch` for this rank
        return iter(share[self.position :])

    def _epoch_share(self) -> list[int]:
        if self.lengths is None or not self.shuffle:
            return list(super().__iter__())
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()  # as DistributedSampler draws it
        order = length_grouped_order(order, self.lengths, self.batch_size * self.num_replicas, generator)
        order += order[: self.total_size - len(order)]  # pad as DistributedSampler does
        return order[self.rank : self.total_size : self.num_replicas]

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "size": self.size,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` stopped; a mid-epoch ``state`` must come from the same data and devices.

        Raises:
            CheckpointMismatchError: ``state`` stopped inside an epoch and its size, seed, shuffling or
                number of replicas differ from this sampler's (its remaining indices mean nothing here).
        """
        finished = state["position"] >= math.ceil(state["size"] / state["num_replicas"])
        saved = (state["size"], state["seed"], state["shuffle"], state["num_replicas"])
        ours = (self.size, self.seed, self.shuffle, self.num_replicas)
        if not finished and saved != ours:
            raise CheckpointMismatchError(
                f"the checkpoint stopped inside epoch {state['epoch']} of a training order of "
                f"{state['size']} rows (seed {state['seed']}, shuffle {state['shuffle']}, "
                f"{state['num_replicas']} process(es)), but this run's is {self.size} rows (seed {self.seed}, "
                f"shuffle {self.shuffle}, {self.num_replicas} process(es)): resume with the same data options "
                "and number of devices, or from a checkpoint written at the end of an epoch"
            )
        self.epoch = state["epoch"]
        self.position = self.num_samples if finished else state["position"]
