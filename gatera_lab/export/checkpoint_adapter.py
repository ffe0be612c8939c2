"""`load_checkpoint_adapter`: a Lightning checkpoint written by `GateraModule`, back to a working model.

The one checkpoint-to-model loader: ``gatera-lab export`` calls it, ``eval``, ``generate`` and ``gates`` (and
the scripts) through `load_for_inference`, which adds the tokenizer, the device and eval mode, and loads a
base model alone where asked.

The checkpoint layout (written by ``GateraModule.on_save_checkpoint``; its metadata is built by
`gatera_lab.export.checkpoint_metadata.checkpoint_metadata`); everything this module reads from it is named
here:

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

from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.adapters.precision_policy import DTYPES
from gatera_lab.errors import ConfigError
from gatera_lab.export.checkpoint_metadata import METADATA_KEY
from gatera_lab.export.saved_adapter import SavedAdapter
from gatera_lab.io.checkpoint_file import load_checkpoint_file

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
    """The base model as `GateraModule` loads it (`gatera_lab.models.model_loading.load_causal_lm`:
    embedded names such as ``smollm2-135m-instruct``, HF ids and folders, via
    ``AutoModelForCausalLM.from_pretrained``).

    An embedded model's Hugging Face id (``HuggingFaceTB/SmolLM2-135M-Instruct``, the base exports name) falls
    back to the embedded copy when the Hub cannot serve it (offline)."""
    from gatera_lab.models.model_loading import load_causal_lm

    return load_causal_lm(name_or_path, dtype=dtype)


def metadata_source(checkpoint_path: str | os.PathLike[str]) -> str:
    return f"{checkpoint_path} checkpoint[{METADATA_KEY!r}]"


def read_checkpoint(
    checkpoint_path: str | os.PathLike[str], label: str | None = None
) -> tuple[SavedAdapter, dict[str, Tensor]]:
    """The metadata and the adapter tensors (keys without the ``model.`` prefix) of a GateraModule checkpoint.

    The file is unpickled with ``weights_only=True`` (`load_checkpoint_file`), so a checkpoint that holds
    anything but tensors and plain values is refused with an `UnsafeCheckpointError` before it can run code.
    ``label`` is how errors name the file (default: the path), e.g. ``"option --ckpt: 'x.ckpt'"``.
    """
    path = Path(checkpoint_path)
    label = label or str(path)
    checkpoint: Any = load_checkpoint_file(path, label)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(METADATA_KEY), dict):
        raise ConfigError(
            f"{label}: no checkpoint[{METADATA_KEY!r}] metadata, so it was not written by gatera-lab's "
            "GateraModule"
        )
    saved = SavedAdapter.from_dict(checkpoint[METADATA_KEY], metadata_source(path))
    state = checkpoint.get(STATE_DICT_KEY)
    if not isinstance(state, dict) or not state:
        raise ConfigError(f"{label}: checkpoint[{STATE_DICT_KEY!r}] is missing or holds no adapter tensors")
    tensors = {}
    for key, value in state.items():
        if not key.startswith(MODEL_PREFIX):
            raise ConfigError(
                f"{label}: checkpoint[{STATE_DICT_KEY!r}] key {key!r} does not start with {MODEL_PREFIX!r}"
            )
        tensors[key[len(MODEL_PREFIX) :]] = value
    return saved, tensors


def training_dtype(saved: SavedAdapter, tensors: dict[str, Tensor]) -> torch.dtype:
    """The base's storage dtype in training: ``base_dtype`` of the metadata (bfloat16 for the GPU recipe, so a
    reload takes the memory the training took), or for checkpoints that do not record it the adapter tensors'."""
    return DTYPES[saved.base_dtype] if saved.base_dtype else next(iter(tensors.values())).dtype


def require_gated(saved: SavedAdapter, label: str) -> None:
    """Refuse an ungated adapter (it has no token gates to render or skip) with a `ConfigError`."""
    if not saved.method_hparams.get("gate"):
        raise ConfigError(
            f"{label}: method {saved.method_name!r} is ungated (gate=False), so it has no token gates; "
            "this needs a checkpoint of a gated method such as hira_gate, lora_gate or dora_gate"
        )


def load_checkpoint_adapter(
    checkpoint_path: str | os.PathLike[str],
    base_model: str | None = None,
    load_base: BaseLoader = load_base_model,
    *,
    gated: bool = False,
    label: str | None = None,
) -> CheckpointAdapter:
    """Load the base model a GateraModule checkpoint was trained on and inject its trained adapter.

    The one checkpoint-to-model loader: the commands (``export``, ``eval``, ``generate``, ``gates``, through
    `load_for_inference`) and the scripts all load through it.

    Args:
        checkpoint_path: a ``.ckpt`` written by `GateraModule` (layout in this module's docstring).
        base_model: load this base model instead of the one recorded in the checkpoint (e.g. a local copy).
        load_base: ``(name_or_path, dtype) -> model``; the dtype is `training_dtype`.
        gated: refuse an ungated method (`require_gated`) before the base model loads.
        label: how errors name the file (default: the path), e.g. ``"option --ckpt: 'x.ckpt'"``.

    Raises:
        UnsafeCheckpointError: the file holds something other than tensors and plain values (it is not read).
        ConfigError: the file is not such a checkpoint, or the base model cannot be loaded.
        CheckpointMismatchError: the base model is not the one the adapter was trained on.
    """
    label = label or str(checkpoint_path)
    saved, tensors = read_checkpoint(checkpoint_path, label)
    if gated:
        require_gated(saved, label)
    base = base_model or saved.base_model
    try:
        model = load_base(base, training_dtype(saved, tensors))
    except (OSError, ConfigError) as error:
        raise ConfigError(
            f"{label}: cannot load base model {base!r} ({error}); pass another name or folder with --base-model"
        ) from error
    method = saved.attach(
        model, tensors, metadata_source(checkpoint_path), f"{checkpoint_path} checkpoint[{STATE_DICT_KEY!r}]"
    )
    return CheckpointAdapter(model=model, method=method, base_model=base, saved=saved)


@dataclass
class InferenceModel:
    """A model in eval mode on its device with its tokenizer, and the checkpoint's adapter if one is on it."""

    model: nn.Module
    tokenizer: Any
    base_model: str
    adapter: CheckpointAdapter | None

    @property
    def method_name(self) -> str | None:
        """The adapter's method name (``hira_gate``, ...), or None for a base model alone."""
        return self.adapter.saved.method_name if self.adapter is not None else None


def load_for_inference(
    checkpoint_path: str | os.PathLike[str] | None,
    base_model: str | None = None,
    *,
    with_adapter: bool = True,
    gated: bool = False,
    device: str = "cpu",
    label: str | None = None,
) -> InferenceModel:
    """What ``eval``, ``generate``, ``gates`` and the scripts run: a checkpoint's adapter on its base, or a
    base model alone, with the base's tokenizer, in eval mode on ``device``.

    Args:
        checkpoint_path: a GateraModule checkpoint (loaded by `load_checkpoint_adapter`), or None: the base
            model ``base_model`` alone (in float32).
        base_model: the base model to load instead of the checkpoint's recorded one (``--base-model``).
        with_adapter: False: the checkpoint's base alone (or ``base_model``), in the checkpoint's
            `training_dtype`, as the adapter would run on it.
        gated: refuse an ungated method before any model loads (``gates``).
        device: the torch device to move the model to.
        label: how errors name the checkpoint (default: the path).
    """
    from gatera_lab.models.model_loading import load_tokenizer

    adapter = None
    if checkpoint_path is None:
        if base_model is None:
            raise ConfigError(
                "give --ckpt CHECKPOINT (a trained adapter) or --base-model NAME (the base model alone)"
            )
        model, base = load_base_model(base_model, torch.float32), base_model
    elif with_adapter:
        adapter = load_checkpoint_adapter(checkpoint_path, base_model, gated=gated, label=label)
        model, base = adapter.model, adapter.base_model
    else:
        saved, tensors = read_checkpoint(checkpoint_path, label)
        base = base_model or saved.base_model
        model = load_base_model(base, training_dtype(saved, tensors))
    return InferenceModel(model.to(device).eval(), load_tokenizer(base), base, adapter)
