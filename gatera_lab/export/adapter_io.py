"""`export_adapter`, `export_merged_model` and `load_adapter`: a trained adapter to a folder and back.

Ungated LoRA, DoRA and HiRA are written in the Hugging Face PEFT format (`gatera_lab.export.peft_format`),
so ``peft.PeftModel.from_pretrained(base, folder)`` serves them; every other method (the gated ones, a
user's subclass) in the gatera format (`gatera_lab.export.gatera_format`). `load_adapter` reads both.
`export_merged_model` folds an ungated adapter into its base and writes a plain Hugging Face model folder
(`gatera_lab.export.merged_model`). Every export names its base so that others can resolve it (an embedded
model by its Hugging Face id, `gatera_lab.export.base_model_record`; `exported_base_model` reads it back) and
holds the base model's tokenizer when one is given. Folders are written atomically and durably
(`gatera_lab.export.atomic_folder`), and ``overwrite`` replaces only a folder that is an export
(`gatera_lab.export.export_folder`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from safetensors import SafetensorError
from torch import nn

from gatera_lab.adapters.adapter_method import AdapterMethod, adapter_layers
from gatera_lab.errors import ConfigError, GateraError
from gatera_lab.export import gatera_format, merged_model, peft_format
from gatera_lab.export.atomic_folder import atomic_folder
from gatera_lab.export.base_model_record import BaseModelRecord
from gatera_lab.export.export_folder import require_adapter_export
from gatera_lab.export.merged_weights import require_mergeable

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

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
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Path:
    """Write the adapter of ``model`` (injected by ``method``) to the folder ``out_dir``.

    Args:
        model: the model with ``method`` applied (merged or not: only adapter tensors are written).
        method: the `AdapterMethod` whose layers ``model`` holds.
        out_dir: the folder to create; written atomically.
        base_model_name_or_path: the base model the adapter belongs to; an embedded name is recorded as its
            Hugging Face id, with the embedded copy noted beside it (`BaseModelRecord`).
        overwrite: replace an existing non-empty ``out_dir``, which must be an export and hold nothing else
            (`gatera_lab.export.export_folder.require_adapter_export`).
        format: ``auto`` (PEFT for ungated lora/dora/hira, gatera otherwise), ``peft`` or ``gatera``.
        tokenizer: the base model's tokenizer, saved into the folder too (None: no tokenizer files).

    Returns:
        ``out_dir`` as a `Path`.

    Raises:
        ConfigError: ``model`` has no layers of ``method``, the format cannot hold it, or ``out_dir`` is taken
            (non-empty without ``overwrite``, or not an export).
        ExportWriteError: the folder could not be written (full disk, ...); ``out_dir`` is unchanged.
    """
    require_method_layers(model, method)
    chosen = export_format(method, format)
    writer = peft_format.write_peft_adapter if chosen == "peft" else gatera_format.write_gatera_adapter
    base = BaseModelRecord.of(str(base_model_name_or_path))
    write = partial(writer, model=model, method=method, base=base)
    return write_export(out_dir, overwrite, write, tokenizer, "adapter folder")


def export_merged_model(
    model: nn.Module,
    method: AdapterMethod,
    out_dir: str | os.PathLike[str],
    base_model_name_or_path: str,
    overwrite: bool = False,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Path:
    """Write ``model`` with its ungated adapter merged into the base weights as a Hugging Face model folder.

    ``AutoModelForCausalLM.from_pretrained(out_dir)`` loads it without gatera-lab and computes what ``model``
    computes (`gatera_lab.export.merged_model`). ``model`` itself is not changed. Arguments as for
    `export_adapter`.

    Raises:
        ConfigError: ``method`` is gated (a per-token gate cannot be merged), its update is not linear, an
            adapted weight is tied to another, or ``out_dir`` is taken as for `export_adapter`.
        ExportWriteError: the folder could not be written; ``out_dir`` is unchanged.
    """
    require_method_layers(model, method)
    require_mergeable(method)
    base = BaseModelRecord.of(str(base_model_name_or_path))
    write = partial(merged_model.write_merged_model, model=model, method=method, base=base)
    return write_export(out_dir, overwrite, write, tokenizer, "merged model folder")


def require_method_layers(model: nn.Module, method: AdapterMethod) -> None:
    """Refuse a model without adapter layers, or with layers another method made."""
    layers = [layer for _, layer in adapter_layers(model)]
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no adapter layers to export; apply a method first")
    if any(layer.method is not method for layer in layers):
        raise ConfigError(f"the adapter layers of {type(model).__name__} were not made by method {method!r}")


def write_export(
    out_dir: str | os.PathLike[str],
    overwrite: bool,
    write: Callable[[Path], None],
    tokenizer: PreTrainedTokenizerBase | None,
    kind: str,
) -> Path:
    """Run ``write`` on a staging folder, save ``tokenizer`` beside it, and install the folder as ``out_dir``.

    ``kind`` (``adapter folder``, ...) names the folder in a `ExportWriteError`.
    """
    try:
        with atomic_folder(out_dir, overwrite=overwrite, replaceable=require_adapter_export) as staging:
            write(staging)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
            share_like_other_files(staging)
    except (OSError, SafetensorError) as error:  # a full disk, a read-only folder, an I/O error
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ExportWriteError(
            f"could not write {kind} {str(out_dir)!r} ({reason}); it was left as it was before"
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


def share_like_other_files(folder: Path) -> None:
    """Give every file the permissions a new file gets (``0o666 & ~umask``): safetensors and transformers
    write weights 0600, which would keep an export from the others it is meant for."""
    umask = os.umask(0o022)
    os.umask(umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def exported_base_model(export_dir: str | os.PathLike[str]) -> BaseModelRecord:
    """The base model an export folder (any of the three formats, or PEFT's own) names.

    Its `BaseModelRecord.loadable` is what gatera-lab loads: the embedded model it was trained on, where the
    folder records one, else ``base_model_name_or_path``.

    Raises:
        ConfigError: the folder is no export, or names no base model.
    """
    folder = Path(export_dir)
    config_files = (gatera_format.CONFIG_FILE, merged_model.CONFIG_FILE, peft_format.CONFIG_FILE)
    for name in config_files:
        path = folder / name
        if path.is_file():
            data = read_json_object(path)
            if name == peft_format.CONFIG_FILE and (folder / peft_format.BASE_SOURCE_FILE).is_file():
                data = {**data, **read_json_object(folder / peft_format.BASE_SOURCE_FILE)}
            record = BaseModelRecord.from_fields(data, fallback=data.get("base_model"))
            if record is None:
                raise ConfigError(f"{path}: field 'base_model_name_or_path' is missing or empty")
            return record
    raise ConfigError(f"{folder} holds none of {list(config_files)}, so it is not an export folder")


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path``; `ConfigError` naming the file if it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
