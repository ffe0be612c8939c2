"""`export_adapter` and `load_adapter`: a trained adapter to a folder and back.

Ungated LoRA, DoRA and HiRA are written in the Hugging Face PEFT format (`gatera_lab.export.peft_format`),
so ``peft.PeftModel.from_pretrained(base, folder)`` serves them; every other method (the gated ones, a
user's subclass) in the gatera format (`gatera_lab.export.gatera_format`). `load_adapter` reads both.
Folders are written atomically and durably (`gatera_lab.export.atomic_folder`), and ``overwrite`` replaces only
a folder that is an adapter export (`gatera_lab.export.export_folder`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from safetensors import SafetensorError
from torch import nn

from gatera_lab.adapter_method import AdapterMethod, adapter_layers
from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.export import gatera_format, peft_format
from gatera_lab.export.atomic_folder import atomic_folder
from gatera_lab.export.export_folder import require_adapter_export

ExportFormat = Literal["auto", "peft", "gatera"]


class ExportWriteError(GateraError, OSError):
    """An adapter folder could not be written (full disk, no permission, I/O error); names the folder."""


def export_format(method: AdapterMethod, requested: ExportFormat = "auto") -> Literal["peft", "gatera"]:
    """The format `export_adapter` writes ``method`` in: ``peft`` where PEFT can represent it."""
    representable = peft_format.peft_method_name(method) is not None
    if requested == "auto":
        return "peft" if representable else "gatera"
    if requested == "peft" and not representable:
        raise ConfigError(
            f"format='peft' cannot hold method {method.name!r} ({method.class_path()}): Hugging Face PEFT "
            "has only ungated lora, dora and hira; use format='gatera'"
        )
    if requested not in ("peft", "gatera"):
        raise ConfigError(f"option 'format' must be 'auto', 'peft' or 'gatera', got {requested!r}")
    return requested


def export_adapter(
    model: nn.Module,
    method: AdapterMethod,
    out_dir: str | os.PathLike[str],
    base_model_name_or_path: str,
    overwrite: bool = False,
    format: ExportFormat = "auto",
) -> Path:
    """Write the adapter of ``model`` (injected by ``method``) to the folder ``out_dir``.

    Args:
        model: the model with ``method`` applied (merged or not: only adapter tensors are written).
        method: the `AdapterMethod` whose layers ``model`` holds.
        out_dir: the folder to create; written atomically.
        base_model_name_or_path: the base model the adapter belongs to (recorded in the config).
        overwrite: replace an existing non-empty ``out_dir``, which must be an adapter export and hold
            nothing else (`gatera_lab.export.export_folder.require_adapter_export`).
        format: ``auto`` (PEFT for ungated lora/dora/hira, gatera otherwise), ``peft`` or ``gatera``.

    Returns:
        ``out_dir`` as a `Path`.

    Raises:
        ConfigError: ``model`` has no layers of ``method``, the format cannot hold it, or ``out_dir`` is taken
            (non-empty without ``overwrite``, or not an adapter export).
        ExportWriteError: the folder could not be written (full disk, ...); ``out_dir`` is unchanged.
    """
    layers = [layer for _, layer in adapter_layers(model)]
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no adapter layers to export; apply a method first")
    if any(layer.method is not method for layer in layers):
        raise ConfigError(f"the adapter layers of {type(model).__name__} were not made by method {method!r}")
    chosen = export_format(method, format)
    writer = peft_format.write_peft_adapter if chosen == "peft" else gatera_format.write_gatera_adapter
    try:
        with atomic_folder(out_dir, overwrite=overwrite, replaceable=require_adapter_export) as staging:
            writer(staging, model, method, str(base_model_name_or_path))
    except (OSError, SafetensorError) as error:  # a full disk, a read-only folder, an I/O error
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ExportWriteError(
            f"could not write adapter folder {str(out_dir)!r} ({reason}); it was left as it was before"
        ) from error
    return Path(out_dir)


def load_adapter(model: nn.Module, adapter_dir: str | os.PathLike[str]) -> AdapterMethod:
    """Inject the adapter saved in ``adapter_dir`` into the fresh base ``model``; returns the rebuilt method.

    Args:
        model: the base model without adapters, the one the adapter was trained on.
        adapter_dir: a folder written by `export_adapter` (either format) or by PEFT's ``save_pretrained``
            for a plain LoRA, DoRA or HiRA adapter.

    Raises:
        ConfigError: the folder is missing, malformed or of an unknown kind (names the file and field).
        CheckpointMismatchError: the adapter was made for another base model.
    """
    folder = Path(adapter_dir)
    if not folder.is_dir():
        raise ConfigError(f"adapter folder {str(folder)!r} does not exist")
    if (folder / gatera_format.CONFIG_FILE).is_file():
        return gatera_format.read_gatera_adapter(folder, model)
    if (folder / peft_format.CONFIG_FILE).is_file():
        return peft_format.read_peft_adapter(folder, model)
    raise ConfigError(
        f"{folder} holds neither {gatera_format.CONFIG_FILE!r} (gatera format) nor "
        f"{peft_format.CONFIG_FILE!r} (Hugging Face PEFT format)"
    )
