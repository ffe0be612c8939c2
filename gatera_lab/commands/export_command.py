"""``gatera-lab export``: a GateraModule checkpoint to a standalone adapter folder, or a merged model folder.

    gatera-lab export --ckpt runs/hira/checkpoints/last.ckpt --out adapters/hira [--base-model DIR] [--overwrite]
    gatera-lab export --ckpt runs/lora/checkpoints/last.ckpt --out models/lora-merged --merge

Ungated LoRA, DoRA and HiRA become a Hugging Face PEFT adapter (``peft.PeftModel.from_pretrained`` loads
it); gated methods and other classes the gatera format (``gatera_adapter.json`` + ``adapter.safetensors``,
see `gatera_lab.export.gatera_format`), which `gatera_lab.export.load_adapter` reads. ``--merge`` folds an
ungated adapter into the base weights and writes a plain Hugging Face model folder that
``AutoModelForCausalLM.from_pretrained`` loads (`gatera_lab.export.merged_model`); a gated method is refused.
Every export names its base by a resolvable id (the embedded ``smollm2-135m-instruct`` as
``HuggingFaceTB/SmolLM2-135M-Instruct``) and holds the base model's tokenizer; a base without one is
exported without it, with a note on stderr.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import TYPE_CHECKING

from gatera_lab.commands.command_entry import add_base_model_option, run_command
from gatera_lab.errors import ConfigError
from gatera_lab.export import (
    BaseModelRecord,
    export_adapter,
    export_format,
    export_merged_model,
    load_checkpoint_adapter,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatera-lab export",
        description="Write the adapter of a GateraModule checkpoint as a standalone folder "
        "(Hugging Face PEFT format for ungated lora/dora/hira, the gatera format otherwise), with the base "
        "model's tokenizer; or, with --merge, the base model with the adapter merged into its weights.",
    )
    parser.add_argument("--ckpt", required=True, help="a Lightning checkpoint written by GateraModule")
    parser.add_argument("--out", required=True, help="the folder to write (atomically)")
    add_base_model_option(parser)
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out folder; only an export (adapter_config.json, gatera_adapter.json or "
        "gatera_merge.json with the files of its format, the tokenizer's and nothing else) is replaced",
    )
    parser.add_argument(
        "--format",
        choices=["auto", "peft", "gatera"],
        default="auto",
        help="auto: PEFT where it can hold the method, gatera otherwise (default: %(default)s)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="write a full Hugging Face model folder with the adapter merged into the base weights "
        "(ungated lora, dora, hira and other linear updates; gated methods cannot be merged)",
    )
    return parser


def run(args: argparse.Namespace) -> None:
    """Write the export and print what was written."""
    if args.merge and args.format != "auto":
        raise ConfigError("--format chooses an adapter format; --merge writes a full model folder instead")
    loaded = load_checkpoint_adapter(
        args.ckpt, base_model=args.base_model, label=f"option --ckpt: {args.ckpt!r}"
    )
    base = BaseModelRecord.of(loaded.base_model).name_or_path  # as the export names it
    if args.merge:
        write = partial(export_merged_model, loaded.model, loaded.method)
        summary = f"{loaded.method.name} merged into base {base}"
    else:
        chosen = export_format(loaded.method, args.format)
        write = partial(export_adapter, loaded.model, loaded.method, format=chosen)
        summary = f"{loaded.method.name} adapter ({chosen} format, base {base})"
    out = write(
        args.out,
        base_model_name_or_path=loaded.base_model,
        overwrite=args.overwrite,
        tokenizer=base_tokenizer(loaded.base_model),
    )
    print(f"wrote {summary} to {out}")


def main(argv: list[str] | None = None) -> int:
    """Run ``gatera-lab export``; returns the exit status (0 on success, 2 on a gatera-lab error)."""
    return run_command("export", build_parser(), run, argv)


def base_tokenizer(base_model: str) -> PreTrainedTokenizerBase | None:
    """The tokenizer gatera-lab trains with for ``base_model``; None (with a note on stderr) if it has none."""
    from gatera_lab.models.model_loading import load_tokenizer

    try:
        return load_tokenizer(base_model)
    except ConfigError as error:
        print(f"gatera-lab export: note: the export holds no tokenizer: {error}", file=sys.stderr)
        return None


if __name__ == "__main__":
    sys.exit(main())
