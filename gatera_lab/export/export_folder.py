"""What an export folder is, so that ``--overwrite`` replaces only such folders.

An export holds the config file of one of the three formats and nothing but the files that format writes,
plus the base model's tokenizer files (`TOKENIZER_FILES`, what ``tokenizer.save_pretrained`` writes):

- Hugging Face PEFT: ``adapter_config.json`` (+ ``adapter_model.safetensors``, ``gatera_lab_base.json``),
  see `peft_format`;
- gatera: ``gatera_adapter.json`` (+ ``adapter.safetensors``), see `gatera_format`;
- merged model (``--merge``): ``gatera_merge.json`` (+ ``config.json``, ``generation_config.json``,
  ``model.safetensors`` or its shards and index), see `merged_model`.

Replacing a folder deletes everything in it, so any other file or sub-folder (a run's ``checkpoints/``, a
README, a home directory's contents) makes the folder one that ``--overwrite`` refuses to replace.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from gatera_lab.errors import ConfigError
from gatera_lab.export import gatera_format, merged_model, peft_format

# config file -> the other files (patterns) of that format
FORMAT_FILES: dict[str, tuple[str, ...]] = {
    gatera_format.CONFIG_FILE: (gatera_format.WEIGHTS_FILE,),
    peft_format.CONFIG_FILE: (peft_format.WEIGHTS_FILE, peft_format.BASE_SOURCE_FILE),
    merged_model.CONFIG_FILE: merged_model.MODEL_FILES,
}
CONFIG_FILES = tuple(FORMAT_FILES)
TOKENIZER_FILES = (  # every name transformers' tokenizers save under (fast, sentencepiece, BPE, WordPiece)
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
)
TEMPLATE_FOLDER = "additional_chat_templates"  # where a tokenizer saves its extra chat templates
SHOWN = 5  # other entries named in the error


def require_adapter_export(folder: Path) -> None:
    """Return if ``folder`` is an export that may be replaced; otherwise raise a `ConfigError`.

    Raises:
        ConfigError: ``folder`` has no config file of any format, or holds other entries; the message names
            the folder and what it lacks or what else it holds.
    """
    names = sorted(entry.name for entry in folder.iterdir())
    refusal = f"refusing to replace folder {str(folder)!r} (--overwrite)"
    configs = [name for name in CONFIG_FILES if (folder / name).is_file()]
    if not configs:
        raise ConfigError(
            f"{refusal}: it is not an adapter export, it has none of {describe(list(CONFIG_FILES))} "
            f"(it holds {describe(names)}); choose another --out folder"
        )
    allowed = [
        *configs,
        *TOKENIZER_FILES,
        *(pattern for config in configs for pattern in FORMAT_FILES[config]),
    ]
    others = [name for name in names if not is_export_file(folder / name, allowed)]
    if others:
        raise ConfigError(
            f"{refusal}: besides an adapter export it holds {describe(others)}, which replacing it would delete; "
            "move them away or choose another --out folder"
        )


def is_export_file(path: Path, allowed: list[str]) -> bool:
    """``path`` is a file whose name matches one of the ``allowed`` patterns (or a tokenizer's template folder)."""
    if path.name == TEMPLATE_FOLDER:
        return path.is_dir() and all(entry.is_file() for entry in path.iterdir())
    return path.is_file() and any(fnmatchcase(path.name, pattern) for pattern in allowed)


def describe(names: list[str]) -> str:
    """``'a', 'b' and 3 more`` for a list of entry names."""
    shown = ", ".join(repr(name) for name in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
