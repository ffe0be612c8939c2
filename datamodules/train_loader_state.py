"""`TrainLoaderState`: a DataModule mixin that keeps the training loader's place in the epoch in checkpoints."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.trainer.states import TrainerFn
from torch.utils.data import DataLoader

from gatera_lab.datamodules.resumable_loader import ResumableLoader


class TrainLoaderState:
    """Mixin for a ``LightningDataModule`` (list it first): a resumed fit continues mid-epoch where it stopped.

    Lightning writes the DataModule's ``state_dict()`` into every checkpoint (under the class name) and, on
    ``fit(ckpt_path=...)``, passes it to ``load_state_dict`` before it asks for the training loader (after,
    for strategies that restore after setup, e.g. DeepSpeed): the state is applied to the loader already
    built and kept for the next one that ``train_dataloader`` passes through `track_train_loader`.

    Lightning's own record of stateful loaders (``loops.fit_loop.state_dict.combined_loader``, which a
    `ResumableLoader` also fills) is not enough: Lightning restores it only when the training loader is first
    requested after the checkpoint's loops are loaded, and ``trainer.estimated_stepping_batches`` in
    ``configure_optimizers`` (`GateraModule`'s learning-rate schedule) requests it earlier, so the state would
    be dropped without a word (Lightning issue #20550). Restoring the same state twice is harmless.
    """

    _train_loader: DataLoader | None = None
    _train_loader_state: dict[str, Any] | None = None

    def track_train_loader(self, loader: DataLoader) -> DataLoader:
        """Return ``loader`` as the training loader whose place is saved, at a place restored from a checkpoint."""
        self._train_loader = loader
        if self._train_loader_state is not None and isinstance(loader, ResumableLoader):
            loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None
        return loader

    def state_dict(self) -> dict[str, Any]:
        if isinstance(self._train_loader, ResumableLoader):
            return {"train_loader": self._train_loader.state_dict()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("train_loader")
        trainer = getattr(self, "trainer", None)
        if not state or trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return  # validate/test from a checkpoint: no training order to restore
        if isinstance(self._train_loader, ResumableLoader):
            self._train_loader.load_state_dict(state)
        self._train_loader_state = state
