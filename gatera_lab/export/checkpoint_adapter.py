"""`load_checkpoint_adapter`: a Lightning checkpoint written by `GateraModule`, back to a working model.

The checkpoint layout (written by ``GateraModule.on_save_checkpoint``; its metadata is built by
`gatera_lab.checkpoint_metadata.checkpoint_metadata`); everything this module reads from it is named here:

- ``checkpoint["state_dict"]``: the adapter tensors only, keyed ``model.<name in adapter_state_dict>``,
  e.g. ``model.model.layers.0.self_attn.q_proj.lora_A`` (the module's attribute ``model`` is the LM);
- ``checkpoint["gatera"]``: ``method_name``, ``method_class_path``, ``method_hparams``, ``base_model``,
  ``fingerprint`` (the fields of `SavedAdapter`).

Other entries (optimizer state, loops, RNG states, hyper-parameters) are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gatera_lab.adapter_method import AdapterMethod
from gatera_lab.checkpoint_file import load_checkpoint_file
from gatera_lab.checkpoint_metadata import METADATA_KEY
from gatera_lab.errors import ConfigError
from gatera_lab.export.saved_adapter import SavedAdapter
from gatera_lab.precision_policy import DTYPES

STATE_DICT_KEY = "state_dict"
MODEL_PREFIX = "model."

BaseLoader = Callable[[str, torch.dtype], nn.Module]


@dataclass
class CheckpointAdapter:
    """A base model with a checkpoint's adapter injected and loaded."""

    model: nn.Module
    method: AdapterMethod
    base_model: str
    saved: SavedAdapter


def load_base_model(name_or_path: str, dtype: torch.dtype) -> nn.Module:
    """The base model as `GateraModule` loads it (`gatera_lab.model_loading.load_causal_lm`: embedded names
    such as ``smollm2-135m-instruct``, HF ids and folders, via ``AutoModelForCausalLM.from_pretrained``).

    An embedded model's Hugging Face id (``HuggingFaceTB/SmolLM2-135M-Instruct``, the base exports name) falls
    back to the embedded copy when the Hub cannot serve it (offline)."""
    from gatera_lab.model_loading import load_causal_lm

    return load_causal_lm(name_or_path, dtype=dtype)


def metadata_source(checkpoint_path: str | os.PathLike[str]) -> str:
    return f"{checkpoint_path} checkpoint[{METADATA_KEY!r}]"


def read_checkpoint(checkpoint_path: str | os.PathLike[str]) -> tuple[SavedAdapter, dict[str, Tensor]]:
    """The metadata and the adapter tensors (keys without the ``model.`` prefix) of a GateraModule checkpoint.

    The file is unpickled with ``weights_only=True`` (`load_checkpoint_file`), so a checkpoint that holds
    anything but tensors and plain values is refused with an `UnsafeCheckpointError` before it can run code.
    """
    path = Path(checkpoint_path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    checkpoint: Any = load_checkpoint_file(path)
    if not isinstance(checkpoint, dict) or METADATA_KEY not in checkpoint:
        raise ConfigError(
            f"{path}: no checkpoint[{METADATA_KEY!r}] metadata, so it was not written by gatera-lab's GateraModule"
        )
    saved = SavedAdapter.from_dict(checkpoint[METADATA_KEY], metadata_source(path))
    state = checkpoint.get(STATE_DICT_KEY)
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"{path}: checkpoint[{STATE_DICT_KEY!r}] is missing or holds no adapter tensors")
    tensors = {}
    for key, value in state.items():
        if not key.startswith(MODEL_PREFIX):
            raise ConfigError(
                f"{path}: checkpoint[{STATE_DICT_KEY!r}] key {key!r} does not start with {MODEL_PREFIX!r}"
            )
        tensors[key[len(MODEL_PREFIX) :]] = value
    return saved, tensors


def load_checkpoint_adapter(
    checkpoint_path: str | os.PathLike[str],
    base_model: str | None = None,
    load_base: BaseLoader = load_base_model,
) -> CheckpointAdapter:
    """Load the base model a GateraModule checkpoint was trained on and inject its trained adapter.

    Args:
        checkpoint_path: a ``.ckpt`` written by `GateraModule` (layout in this module's docstring).
        base_model: load this base model instead of the one recorded in the checkpoint (e.g. a local copy).
        load_base: ``(name_or_path, dtype) -> model``; the dtype is the base's storage dtype in training
            (``base_dtype`` of the metadata: bfloat16 for the GPU recipe, so a reload takes the memory the
            training took), or for checkpoints that do not record it the adapter tensors' dtype.

    Raises:
        UnsafeCheckpointError: the file holds something other than tensors and plain values (it is not read).
        ConfigError: the file is not such a checkpoint, or the base model cannot be loaded.
        CheckpointMismatchError: the base model is not the one the adapter was trained on.
    """
    saved, tensors = read_checkpoint(checkpoint_path)
    base = base_model or saved.base_model
    dtype = DTYPES[saved.base_dtype] if saved.base_dtype else next(iter(tensors.values())).dtype
    try:
        model = load_base(base, dtype)
    except (OSError, ConfigError) as error:
        raise ConfigError(
            f"cannot load base model {base!r} for checkpoint {str(checkpoint_path)!r} ({error}); "
            "pass another name or folder with --base-model"
        ) from error
    method = saved.attach(
        model, tensors, metadata_source(checkpoint_path), f"{checkpoint_path} checkpoint[{STATE_DICT_KEY!r}]"
    )
    return CheckpointAdapter(model=model, method=method, base_model=base, saved=saved)
