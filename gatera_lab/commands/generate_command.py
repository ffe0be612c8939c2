"""``gatera-lab generate``: text from a trained adapter (or from the base model alone).

    gatera-lab generate --ckpt CKPT --prompt "Is the sky blue?" [--prompt ...] [--max-new-tokens N]
    gatera-lab generate --base-model NAME --prompts-file prompts.jsonl --out responses.jsonl

The model is the base model with the checkpoint's adapter (`gatera_lab.export.load_for_inference`:
the checkpoint is read with ``weights_only=True``, the method rebuilt from its ``gatera`` metadata, the base
model checked against its fingerprint), or with ``--base-model`` alone the base model without an adapter
(``--base-model`` with ``--ckpt`` replaces the checkpoint's base model, e.g. with a local copy). A gated adapter's
gates are part of the model's forward, so they act on every prompt and generated token.

Each prompt (``--prompt``, repeatable, and/or ``--prompts-file``, see `gatera_lab.commands.prompts_file`) is
wrapped in the LLM-Adapters/Alpaca template (`gatera_lab.evaluation.prompt_format.render_prompt`) unless
``--raw``, then continued by ``model.generate``: greedily by default, by sampling with ``--temperature``
and/or ``--top-p`` (``--seed`` makes it repeatable). The response (the new tokens, decoded without special
tokens, stripped) is printed, one per prompt with a blank line between them, or token by token with
``--stream``; ``--out FILE.jsonl`` also writes ``{"prompt", "input"?, "response"}`` rows, atomically.
"""

from __future__ import annotations

import argparse
import json

import torch
from torch import nn

from gatera_lab.commands.command_entry import add_base_model_option, run_command, write_output
from gatera_lab.commands.prompts_file import Prompt, read_prompts_file
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.prompt_format import render_prompt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatera-lab generate",
        description="Generate text from a trained adapter checkpoint, or from a base model alone.",
    )
    parser.add_argument("--ckpt", help="a checkpoint written by a gatera-lab fit (adapter only)")
    add_base_model_option(parser, alone=True)
    parser.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    parser.add_argument(
        "--prompts-file", help="one prompt per line, or JSONL rows with a 'prompt' or 'instruction' field"
    )
    parser.add_argument("--raw", action="store_true", help="send the prompts as is, without the template")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="the most tokens per response (64)")
    parser.add_argument("--temperature", type=float, help="sample with this temperature (default: greedy)")
    parser.add_argument("--top-p", type=float, help="sample from the smallest token set of this probability")
    parser.add_argument("--seed", type=int, help="random seed for sampling")
    parser.add_argument("--stream", action="store_true", help="print the tokens as they are generated")
    parser.add_argument("--out", help="also write prompt/response rows to this JSONL file")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    return parser


def collect_prompts(args: argparse.Namespace) -> list[Prompt]:
    """The ``--prompt`` texts, then the ``--prompts-file`` ones."""
    prompts = [Prompt(text) for text in args.prompt]
    if any(not prompt.text.strip() for prompt in prompts):
        raise ConfigError("option --prompt: a prompt is empty")
    if args.prompts_file is not None:
        prompts += read_prompts_file(args.prompts_file)
    if not prompts:
        raise ConfigError("no prompts: give --prompt TEXT (repeatable) or --prompts-file FILE")
    return prompts


def sampling_options(args: argparse.Namespace) -> dict[str, object]:
    """``model.generate`` keyword arguments: greedy, unless ``--temperature > 0`` or ``--top-p`` is given."""
    if args.max_new_tokens < 1:
        raise ConfigError(f"option --max-new-tokens must be >= 1, got {args.max_new_tokens}")
    if args.temperature is not None and args.temperature < 0:
        raise ConfigError(f"option --temperature must be >= 0, got {args.temperature}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise ConfigError(f"option --top-p must be in (0, 1], got {args.top_p}")
    options: dict[str, object] = {"max_new_tokens": args.max_new_tokens}
    if args.top_p is None and not args.temperature:
        return {**options, "do_sample": False}
    return {**options, "do_sample": True, "temperature": args.temperature or 1.0, "top_p": args.top_p or 1.0}


def load_model(args: argparse.Namespace) -> tuple[nn.Module, object]:
    """``(model, tokenizer)``: the base model with the ``--ckpt`` adapter, or the ``--base-model`` alone."""
    from gatera_lab.export.checkpoint_adapter import load_for_inference

    loaded = load_for_inference(
        args.ckpt, args.base_model, device=args.device, label=f"option --ckpt: {args.ckpt!r}"
    )
    return loaded.model, loaded.tokenizer


def generate_response(model: nn.Module, tokenizer, text: str, options: dict, streamer=None) -> str:
    """The decoded new tokens of ``model.generate`` on ``text`` (special tokens dropped, stripped)."""
    encoded = tokenizer(text, return_tensors="pt").to(next(model.parameters()).device)
    if encoded["input_ids"].shape[1] == 0:
        raise ConfigError(f"the prompt {text!r} has no tokens")
    with torch.no_grad():
        output = model.generate(
            **encoded, pad_token_id=tokenizer.pad_token_id, streamer=streamer, **options
        )  # (1, P + N)
    new_tokens = output[0, encoded["input_ids"].shape[1] :]  # (N,)
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def prompt_text(prompt: Prompt, raw: bool) -> str:
    """What the model is given: the template around the prompt, or with ``raw`` the text (then the input)."""
    if not raw:
        return render_prompt(prompt.text, prompt.input_text)
    return f"{prompt.text}\n{prompt.input_text}" if prompt.input_text else prompt.text


def run(args: argparse.Namespace) -> list[dict[str, str]]:
    """Generate a response for every prompt; returns the ``{"prompt", "input"?, "response"}`` rows."""
    prompts = collect_prompts(args)
    options = sampling_options(args)
    model, tokenizer = load_model(args)
    streamer = None
    if args.stream:
        from transformers import TextStreamer

        streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    rows = []
    for index, prompt in enumerate(prompts):
        if index:
            print(flush=True)  # a blank line between two responses
        response = generate_response(model, tokenizer, prompt_text(prompt, args.raw), options, streamer)
        if not args.stream:
            print(response, flush=True)
        row = {"prompt": prompt.text, "input": prompt.input_text, "response": response}
        rows.append({key: value for key, value in row.items() if key != "input" or value})
    if args.out is not None:
        write_output("--out", args.out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return rows


def main(argv: list[str]) -> int:
    """Entry point of ``gatera-lab generate``; returns the exit status (2 on a bad option, file or checkpoint)."""
    return run_command("generate", build_parser(), run, argv)
