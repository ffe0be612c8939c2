"""`AdapterCheckpointHooks`: the checkpoint hooks of `GateraModule` (adapter tensors only, with metadata).

Saving keeps the adapter tensors of the state dict (the frozen base is reloaded from ``model``), adds the
metadata of `gatera_lab.export.checkpoint_metadata` and every process's random-generator states
(`gatera_lab.training.rank_rng_states`); loading checks the metadata against the model at hand and gives each
process its own generator states back.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.distributed.fsdp._common_utils import clean_tensor_name

from gatera_lab.adapters.adapter_method import AdapterMethod, named_adapter_parameters
from gatera_lab.export.checkpoint_metadata import (
    METADATA_KEY,
    RNG_KEY,
    check_checkpoint_matches,
    checkpoint_metadata,
)
from gatera_lab.training.rank_rng_states import capture_rank_rng_states, restore_rank_rng_states


class AdapterCheckpointHooks(L.LightningModule):
    """Mixin for a LightningModule with ``model`` (adapters injected), ``method`` and ``hparams.model``."""

    method: AdapterMethod

    def _metadata(self) -> dict[str, Any]:
        from gatera_lab.export.fingerprint import base_model_fingerprint

        fingerprint = base_model_fingerprint(self.model)
        return checkpoint_metadata(self.method, self.hparams.model, fingerprint, self.hparams.get("dtype"))

    def _adapter_keys(self) -> set[str]:
        """State-dict keys of the adapter tensors (wrapper prefixes such as FSDP's removed, as in a state dict)."""
        return {clean_tensor_name(f"model.{name}") for name, _ in named_adapter_parameters(self.model)}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        keys = self._adapter_keys()
        checkpoint["state_dict"] = {
            key: value for key, value in checkpoint["state_dict"].items() if key in keys
        }
        checkpoint[METADATA_KEY] = self._metadata()
        checkpoint[RNG_KEY] = capture_rank_rng_states()  # a collective: every process saves
        # LightningCLI would parse saved hyper-parameters back over the command line's options on
        # `test --ckpt_path` (and method_name/method_hparams are not constructor arguments): the run's
        # config.yaml and the metadata above describe the run instead.
        checkpoint.pop("hyper_parameters", None)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_checkpoint_matches(
            checkpoint.get(METADATA_KEY),
            self._metadata(),
            set(checkpoint["state_dict"]),
            self._adapter_keys(),
            training_only=self.method.training_only_options,
        )
        restore_rank_rng_states(checkpoint.get(RNG_KEY))
