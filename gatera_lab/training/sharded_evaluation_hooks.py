"""`ShardedEvaluationHooks`: validation and test on whole weights when the model is sharded with FSDP2.

Each process scores its own share of the evaluation rows, and shares differ by a row
(`gatera_lab.evaluation.distributed_eval_sampler`), candidates run in chunks that depend on their lengths,
and generation stops at each process's own end-of-sequence. Under FSDP2 every forward of a sharded unit is
a collective, so those differences would leave one process waiting for another forever. These hooks gather
the weights once at the start of each evaluation epoch and shard them again at its end
(`gatera_lab.models.fsdp2_sharding.gathered_weights`): inside, forwards are local, as under DDP. Unsharded
models are left as they are.
"""

from __future__ import annotations

import contextlib

import lightning as L

from gatera_lab.models.fsdp2_sharding import gathered_weights


class ShardedEvaluationHooks(L.LightningModule):
    """Mixin (list it before the evaluation mixin) for a LightningModule whose ``model`` may be sharded."""

    _gathered: contextlib.ExitStack | None = None

    def _gather(self) -> None:
        self._release()
        self._gathered = contextlib.ExitStack()
        self._gathered.enter_context(gathered_weights(self.model))

    def _release(self) -> None:
        if self._gathered is not None:
            self._gathered.close()
            self._gathered = None

    def on_validation_epoch_start(self) -> None:
        self._gather()
        super().on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self._release()

    def on_test_epoch_start(self) -> None:
        self._gather()
        super().on_test_epoch_start()

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self._release()
