"""What an adapter export folder is, so that ``--overwrite`` replaces only such folders.

An adapter export holds the config file of one of the two formats and nothing but the files the formats
write:

- Hugging Face PEFT: ``adapter_config.json`` (+ ``adapter_model.safetensors``), see `peft_format`;
- gatera: ``gatera_adapter.json`` (+ ``adapter.safetensors``), see `gatera_format`.

Replacing a folder deletes everything in it, so any other file or sub-folder (a run's ``checkpoints/``, a
README, a home directory's contents) makes the folder one that ``--overwrite`` refuses to replace.
"""

from __future__ import annotations

from pathlib import Path

from gatera_lab.errors import ConfigError
from gatera_lab.export import gatera_format, peft_format

CONFIG_FILES = (gatera_format.CONFIG_FILE, peft_format.CONFIG_FILE)
EXPORT_FILES = frozenset({*CONFIG_FILES, gatera_format.WEIGHTS_FILE, peft_format.WEIGHTS_FILE})
SHOWN = 5  # other entries named in the error


def require_adapter_export(folder: Path) -> None:
    """Return if ``folder`` is an adapter export that may be replaced; otherwise raise a `ConfigError`.

    Raises:
        ConfigError: ``folder`` has no config file of either format, or holds other entries; the message names
            the folder and what it lacks or what else it holds.
    """
    names = sorted(entry.name for entry in folder.iterdir())
    refusal = f"refusing to replace folder {str(folder)!r} (--overwrite)"
    if not any((folder / name).is_file() for name in CONFIG_FILES):
        raise ConfigError(
            f"{refusal}: it is not an adapter export, it lacks {CONFIG_FILES[0]!r} and {CONFIG_FILES[1]!r} "
            f"(it holds {describe(names)}); choose another --out folder"
        )
    others = [name for name in names if name not in EXPORT_FILES or not (folder / name).is_file()]
    if others:
        raise ConfigError(
            f"{refusal}: besides an adapter export it holds {describe(others)}, which replacing it would delete; "
            "move them away or choose another --out folder"
        )


def describe(names: list[str]) -> str:
    """``'a', 'b' and 3 more`` for a list of entry names."""
    shown = ", ".join(repr(name) for name in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
