"""``gatera-lab gates``: render a gated checkpoint's gate values for a prompt as a heatmap PNG.

    gatera-lab gates --ckpt CKPT --prompt "..." --out gates.png [--max-new-tokens N] [--base-model PATH]

The checkpoint's adapter is loaded as every command loads it
(`gatera_lab.export.load_for_inference`: the method rebuilt from the ``gatera`` metadata, applied to
``--base-model`` or the recorded base, whose fingerprint must match), with ``gated=True``: an ungated
checkpoint is refused before a model loads.
The prompt is then continued greedily and every gated module's gate on every token is drawn by
`gatera_lab.diagnostics.plotting.gate_figure`: prompt tokens (prefill) and generated tokens (decode) side by
side, the boundary marked, with histograms of both below. The checkpoint is unpickled with
``weights_only=True`` (`gatera_lab.io.checkpoint_file.load_checkpoint_file`): a file holding anything but
tensors and plain values is refused before it can run code.
"""

from __future__ import annotations

import argparse

from gatera_lab.commands.command_entry import add_base_model_option, run_command
from gatera_lab.diagnostics.generation_trace import trace_generation
from gatera_lab.diagnostics.plotting import gate_figure, gate_figure_size_px, save_png
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.prompt_format import render_prompt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatera-lab gates",
        description="Render a gated checkpoint's per-token gate values for a prompt and its greedy answer.",
    )
    parser.add_argument("--ckpt", required=True, help="a checkpoint written by GateraModule (gated method)")
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--out", required=True, help="the PNG file to write")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="tokens to generate (default 32)")
    add_base_model_option(parser)
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


def run(args: argparse.Namespace) -> str:
    """Render the picture; returns the one-line summary."""
    if args.max_new_tokens < 0:
        raise ConfigError(f"option --max-new-tokens must be >= 0, got {args.max_new_tokens}")
    from gatera_lab.export.checkpoint_adapter import load_for_inference

    loaded = load_for_inference(
        args.ckpt, args.base_model, gated=True, device=args.device, label=f"option --ckpt: {args.ckpt!r}"
    )
    model, tokenizer = loaded.model, loaded.tokenizer
    prompt = args.prompt
    if args.instruction:
        prompt = render_prompt(prompt)
    trace = trace_generation(model, tokenizer, prompt, args.max_new_tokens, stop_at_eos=not args.ignore_eos)
    labels, _ = trace.rows(args.rows)
    figure = gate_figure(trace, args.rows)
    out = save_png(figure, args.out)
    width, height = gate_figure_size_px(len(trace.token_ids), len(labels))
    return (
        f"wrote {out} ({width}x{height} px): {loaded.method_name}, {len(trace.module_names)} gated modules, "
        f"{trace.n_prompt} prompt tokens (mean gate {trace.prefill_mean:.3f}), "
        f"{trace.n_generated} generated tokens (mean gate {trace.decode_mean:.3f})"
    )


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab gates``; returns the exit status (2 on a bad option or checkpoint)."""
    return run_command("gates", build_parser(), lambda args: print(run(args)), argv)
