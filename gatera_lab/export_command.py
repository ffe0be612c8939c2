"""``gatera-lab export``: a GateraModule checkpoint to a standalone adapter folder.

    gatera-lab export --ckpt runs/hira/checkpoints/last.ckpt --out adapters/hira [--base-model DIR] [--overwrite]

Ungated LoRA, DoRA and HiRA become a Hugging Face PEFT adapter (``peft.PeftModel.from_pretrained`` loads
it); gated methods and other classes the gatera format (``gatera_adapter.json`` + ``adapter.safetensors``,
see `gatera_lab.export.gatera_format`), which `gatera_lab.export.load_adapter` reads.
"""

from __future__ import annotations

import argparse
import sys

from gatera_lab.errors import GateraError
from gatera_lab.export import export_adapter, export_format, load_checkpoint_adapter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatera-lab export",
        description="Write the adapter of a GateraModule checkpoint as a standalone folder "
        "(Hugging Face PEFT format for ungated lora/dora/hira, the gatera format otherwise).",
    )
    parser.add_argument("--ckpt", required=True, help="a Lightning checkpoint written by GateraModule")
    parser.add_argument("--out", required=True, help="the adapter folder to write (atomically)")
    parser.add_argument(
        "--base-model",
        default=None,
        help="base model name or folder to load instead of the one recorded in the checkpoint",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a non-empty --out folder; only an adapter export (adapter_config.json or "
        "gatera_adapter.json, with its safetensors file and nothing else) is replaced",
    )
    parser.add_argument(
        "--format",
        choices=["auto", "peft", "gatera"],
        default="auto",
        help="auto: PEFT where it can hold the method, gatera otherwise (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``gatera-lab export``; returns the exit status (0 on success, 2 on a gatera-lab error)."""
    args = build_parser().parse_args(argv)
    try:
        loaded = load_checkpoint_adapter(args.ckpt, base_model=args.base_model)
        chosen = export_format(loaded.method, args.format)
        out = export_adapter(
            loaded.model,
            loaded.method,
            args.out,
            base_model_name_or_path=loaded.base_model,
            overwrite=args.overwrite,
            format=chosen,
        )
    except GateraError as error:
        print(f"gatera-lab export: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {loaded.method.name} adapter ({chosen} format, base {loaded.base_model}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
