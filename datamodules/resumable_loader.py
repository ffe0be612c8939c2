"""`ResumableLoader`: a training DataLoader whose place in the epoch Lightning saves in every checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader

from gatera_lab.datamodules.epoch_seeded_sampler import EpochSeededSampler


class ResumableLoader(DataLoader):
    """A DataLoader over an `EpochSeededSampler` that counts the batches it has handed out.

    Its ``state_dict()`` is the sampler's place in the epoch. A DataModule with `TrainLoaderState` saves it
    in each checkpoint and restores it on ``fit(ckpt_path=...)`` before the loader is iterated (Lightning's fit
    loop also saves it, as it does for any loader with ``state_dict`` and ``load_state_dict``, but restores
    it only in some cases: see `TrainLoaderState`). Lightning restores its own batch counter, so it expects
    exactly the epoch's remaining batches, which is what the restored sampler yields: the resumed run sees the
    batches an uninterrupted run would have seen next.

    The count is taken here, as batches reach the training loop, not in the sampler: worker processes draw
    indices batches ahead. Every batch holds ``batch_size`` indices but the epoch's last (``drop_last`` is
    False), so delivered indices = ``min(batches * batch_size, num_samples)``. Iteration starts (and so
    reads the sampler's epoch) at the first ``next``, after Lightning's ``set_epoch``.
    """

    def __iter__(self) -> Iterator[Any]:
        sampler = self.sampler if isinstance(self.sampler, EpochSeededSampler) else None
        for batch in super().__iter__():
            if sampler is not None:
                sampler.advance(self.batch_size)
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The sampler's ``(epoch, position)`` and what they refer to (empty for another sampler)."""
        return self.sampler.state_dict() if isinstance(self.sampler, EpochSeededSampler) else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and isinstance(self.sampler, EpochSeededSampler):
            self.sampler.load_state_dict(state)
