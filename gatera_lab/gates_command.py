"""``gatera-lab gates``: render a gated checkpoint's gate values for a prompt as a heatmap PNG.

    gatera-lab gates --ckpt CKPT --prompt "..." --out gates.png [--max-new-tokens N] [--base-model PATH]

The method is rebuilt from the checkpoint's ``gatera`` metadata (its class imported from
``method_class_path`` and instantiated with ``method_hparams``), applied to the base model (``--base-model``,
else the ``base_model`` recorded in the checkpoint), and the adapter tensors are loaded (keys without their
``model.`` prefix). The prompt is then continued greedily and every gated module's gate on every token is
drawn by `gatera_lab.diagnostics.plotting.gate_figure`: prompt tokens (prefill) and generated tokens
(decode) side by side, the boundary marked, with histograms of both below. The checkpoint is unpickled with
``weights_only=True`` (`gatera_lab.checkpoint_file.load_checkpoint_file`): a file holding anything but
tensors and plain values is refused before it can run code.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gatera_lab.adapter_method import AdapterMethod, adapter_state_dict
from gatera_lab.checkpoint_file import load_checkpoint_file
from gatera_lab.checkpoint_metadata import METADATA_KEY
from gatera_lab.command_entry import run_command
from gatera_lab.diagnostics.generation_trace import trace_generation
from gatera_lab.diagnostics.plotting import gate_figure, gate_figure_size_px, save_png
from gatera_lab.errors import CheckpointMismatchError, ConfigError
from gatera_lab.prompt_format import render_prompt

PREFIX = "model."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatera-lab gates",
        description="Render a gated checkpoint's per-token gate values for a prompt and its greedy answer.",
    )
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by GateraModule (gated method)")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--out", required=True, help="the PNG file to write")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="tokens to generate (default 32)")
    parser.add_argument(
        "--base-model", default=None, help="base model name or folder (default: the checkpoint's)"
    )
    parser.add_argument(
        "--instruction", action="store_true", help="wrap the prompt in the LLM-Adapters instruction template"
    )
    parser.add_argument("--ignore-eos", action="store_true", help="generate all --max-new-tokens tokens")
    parser.add_argument(
        "--rows",
        choices=("module", "layer"),
        default="module",
        help="heatmap rows: every module, or per layer",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, with errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"option --ckpt: checkpoint {str(path)!r} does not exist")
    checkpoint = load_checkpoint_file(path, f"option --ckpt: {str(path)!r}")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(METADATA_KEY), dict):
        raise CheckpointMismatchError(
            f"{path}: no '{METADATA_KEY}' metadata; the checkpoint was not written by gatera-lab's GateraModule"
        )
    return checkpoint


def import_method_class(class_path: str) -> type[AdapterMethod]:
    module_name, _, class_name = class_path.rpartition(".")
    try:
        method_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"cannot import the checkpoint's method class {class_path!r}: {error}") from error
    if not (isinstance(method_class, type) and issubclass(method_class, AdapterMethod)):
        raise ConfigError(f"the checkpoint's method class {class_path!r} is not an AdapterMethod")
    return method_class


def rebuild_method(metadata: dict[str, Any], path: str | Path) -> AdapterMethod:
    """The checkpoint's method, refusing an ungated one."""
    hparams = dict(metadata.get("method_hparams") or {})
    name = metadata.get("method_name")
    if not hparams.get("gate"):
        raise ConfigError(
            f"{path}: method {name!r} is ungated (gate=False), so it has no token gates to render; "
            "`gatera-lab gates` needs a checkpoint of a gated method such as hira_gate, lora_gate or dora_gate"
        )
    method_class = import_method_class(str(metadata.get("method_class_path")))
    try:
        return method_class(**hparams)
    except TypeError as error:
        raise ConfigError(
            f"{path}: cannot rebuild {method_class.__name__} from {hparams}: {error}"
        ) from error


def load_adapter(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """Copy the adapter tensors (keys prefixed ``model.``) into ``model``, which must have exactly those."""
    state = {key.removeprefix(PREFIX): value for key, value in state_dict.items()}
    expected = set(adapter_state_dict(model))
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"{path}: the adapter tensors do not match the rebuilt model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    model.load_state_dict(state, strict=False)


def load_gated_model(ckpt: str | Path, base_model: str | None = None, device: str = "cpu"):
    """``(model, tokenizer, metadata)``: the base model with the checkpoint's gated adapter, in eval mode."""
    from gatera_lab.model_loading import load_causal_lm, load_tokenizer

    checkpoint = read_checkpoint(ckpt)
    metadata = checkpoint[METADATA_KEY]
    method = rebuild_method(metadata, ckpt)
    base = base_model or metadata.get("base_model")
    if not base:
        raise ConfigError(f"{ckpt}: the checkpoint records no base model; pass --base-model")
    model = load_causal_lm(base, dtype=torch.float32)
    tokenizer = load_tokenizer(base)
    method.apply(model)
    _check_fingerprint(model, metadata, base, ckpt)
    load_adapter(model, checkpoint.get("state_dict", {}), ckpt)
    return model.to(device).eval(), tokenizer, metadata


def _check_fingerprint(model: nn.Module, metadata: dict[str, Any], base: str, path: str | Path) -> None:
    saved = metadata.get("fingerprint")
    if not saved:
        return
    from gatera_lab.fingerprint import base_model_fingerprint, describe_difference

    current = base_model_fingerprint(model)
    if saved != current:
        raise CheckpointMismatchError(
            f"{path}: trained on base model {metadata.get('base_model')!r}, but {base!r} differs: "
            f"{describe_difference(saved, current)}"
        )


def run(args: argparse.Namespace) -> str:
    """Render the picture; returns the one-line summary."""
    if args.max_new_tokens < 0:
        raise ConfigError(f"option --max-new-tokens must be >= 0, got {args.max_new_tokens}")
    model, tokenizer, metadata = load_gated_model(args.ckpt, args.base_model, args.device)
    prompt = args.prompt
    if args.instruction:
        prompt = render_prompt(prompt)
    trace = trace_generation(model, tokenizer, prompt, args.max_new_tokens, stop_at_eos=not args.ignore_eos)
    labels, _ = trace.rows(args.rows)
    figure = gate_figure(trace, args.rows)
    out = save_png(figure, args.out)
    width, height = gate_figure_size_px(len(trace.token_ids), len(labels))
    return (
        f"wrote {out} ({width}x{height} px): {metadata.get('method_name')}, {len(trace.module_names)} gated "
        f"modules, {trace.n_prompt} prompt tokens (mean gate {trace.prefill_mean:.3f}), "
        f"{trace.n_generated} generated tokens (mean gate {trace.decode_mean:.3f})"
    )


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab gates``; returns the exit status (2 on a bad option or checkpoint)."""
    return run_command("gates", build_parser(), lambda args: print(run(args)), argv)
