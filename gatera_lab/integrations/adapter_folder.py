"""The adapter folders `GateraTrainerMixin` saves (``save_model``, checkpoints) and resumes from.

What is written is what ``gatera-lab export`` writes (`gatera_lab.export.export_adapter`): ungated LoRA, DoRA
and HiRA in the Hugging Face PEFT format, every other method in the gatera format, the tokenizer beside it.
But the Trainer saves into folders that hold more than an export: ``output_dir`` holds its ``checkpoint-N/``
folders and ``runs/``, and a checkpoint folder receives the optimizer, scheduler and trainer state next.
`export_adapter` replaces only a folder that is an export and nothing else, so:

- an absent or empty folder, or one that is an export only: `export_adapter` writes it (atomically);
- any other folder: the export is written into a hidden folder inside it, the adapter files of both formats
  already there are removed, and the new files are moved in one by one (each move atomic); the folder's
  other entries stay.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.errors import ConfigError
from gatera_lab.export import export_adapter, gatera_format, peft_format
from gatera_lab.export.adapter_io import read_json_object
from gatera_lab.export.adapter_tensors import load_adapter_tensors
from gatera_lab.export.export_folder import require_adapter_export

ADAPTER_FILES = (  # replaced as a whole: a folder never keeps the config of one format and the tensors of another
    gatera_format.CONFIG_FILE,
    gatera_format.WEIGHTS_FILE,
    peft_format.CONFIG_FILE,
    peft_format.WEIGHTS_FILE,
    peft_format.BASE_SOURCE_FILE,
)


def save_adapter_folder(
    model: nn.Module,
    method: AdapterMethod,
    out_dir: str | os.PathLike[str],
    base_model_name_or_path: str,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> Path:
    """Write the adapter of ``model`` into ``out_dir``, keeping whatever else the folder holds.

    Args:
        model: the model ``method`` was applied to.
        method: its `AdapterMethod`.
        out_dir: the folder; created if absent.
        base_model_name_or_path: the base model the export names.
        tokenizer: saved beside the adapter (None: no tokenizer files).

    Returns:
        ``out_dir`` as a `Path`.
    """
    target = Path(out_dir)
    if not target.is_dir() or not any(target.iterdir()) or is_export_only(target):
        return export_adapter(
            model, method, target, base_model_name_or_path, overwrite=True, tokenizer=tokenizer
        )
    staging = Path(tempfile.mkdtemp(prefix=".gatera-adapter-", dir=target))
    try:
        staged = export_adapter(
            model, method, staging / "adapter", base_model_name_or_path, tokenizer=tokenizer
        )
        for name in ADAPTER_FILES:
            (target / name).unlink(missing_ok=True)
        for path in sorted(staged.iterdir()):
            if path.is_dir():  # a tokenizer's additional_chat_templates/
                shutil.rmtree(target / path.name, ignore_errors=True)
            os.replace(path, target / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def is_export_only(folder: Path) -> bool:
    """Whether ``folder`` holds an adapter export and nothing else (so replacing it loses nothing)."""
    try:
        require_adapter_export(folder)
    except ConfigError:
        return False
    return True


def load_adapter_checkpoint(model: nn.Module, folder: str | os.PathLike[str]) -> None:
    """Copy the adapter tensors saved in ``folder`` (either format) into the adapter ``model`` already holds.

    Raises:
        ConfigError: the folder holds no adapter of either format, or an unreadable one.
        CheckpointMismatchError: the tensors do not fit the model's adapter (another method, rank or base).
    """
    folder = Path(folder)
    if (folder / gatera_format.CONFIG_FILE).is_file():
        tensors = read_tensors(folder / gatera_format.WEIGHTS_FILE)
    elif (folder / peft_format.CONFIG_FILE).is_file():
        config_path = folder / peft_format.CONFIG_FILE
        name = peft_format.method_from_peft_config(read_json_object(config_path), config_path)
        tensors = peft_format.from_peft_names(name, read_tensors(folder / peft_format.WEIGHTS_FILE))
    else:
        raise ConfigError(
            f"checkpoint folder {str(folder)!r} holds neither {gatera_format.CONFIG_FILE!r} nor "
            f"{peft_format.CONFIG_FILE!r}: it was not written by a GateraTrainer"
        )
    load_adapter_tensors(model, tensors, str(folder))


def read_tensors(path: Path) -> dict[str, Tensor]:
    """The tensors of a safetensors file; `ConfigError` naming the file if it is missing or unreadable."""
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise ConfigError(f"{path}: not a readable safetensors file ({error})") from error
