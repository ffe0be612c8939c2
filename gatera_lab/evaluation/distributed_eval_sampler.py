"""`DistributedEvalSampler`: every evaluation row scored exactly once across the processes of a run.

Under DDP, Lightning replaces a loader's sampler by a ``DistributedSampler``, which repeats rows until every
process has as many (``ceil(n / W)`` each): repeated rows are scored twice and counted twice by
`TaskAccuracy`. Lightning leaves a sampler that already is a ``DistributedSampler`` in place (its
``_requires_distributed_sampler``), with default Trainer flags; this one takes rows
``r, r + W, r + 2W, ...`` on process ``r`` of ``W``, in order, without padding, so the processes' shares
partition ``range(n)`` and differ in size by at most one row. Uneven shares are safe in evaluation: the
per-row work has no collective (only the metric's sync at the epoch end, which every process reaches).
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch.distributed as dist
from torch.utils.data import DistributedSampler

from gatera_lab.errors import ConfigError


def _process_group_layout() -> tuple[int, int]:
    """(rank, world size) of the default process group; (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class DistributedEvalSampler(DistributedSampler):
    """Rows ``rank, rank + W, rank + 2W, ...`` of a dataset of ``n`` rows: a partition, no row repeated."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None) -> None:
        """
        Args:
            dataset: the evaluation rows (anything with a length).
            num_replicas: the number of processes ``W``; default: the process group's world size, or 1
                outside a process group (build the loader in the ``*_dataloader`` hooks, which Lightning
                calls after the group starts).
            rank: this process's index in ``0..W-1``; default: the process group's rank, or 0.
        """
        group_rank, group_size = _process_group_layout()
        num_replicas = group_size if num_replicas is None else num_replicas
        rank = group_rank if rank is None else rank
        if len(dataset) < num_replicas:
            raise ConfigError(
                f"the evaluation set has {len(dataset)} rows, fewer than the {num_replicas} processes of the "
                "run: a process with no row would leave the others waiting; use at most "
                f"{len(dataset)} devices (option 'trainer.devices')"
            )
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.total_size = len(dataset)
        self.num_samples = len(range(rank, self.total_size, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples
