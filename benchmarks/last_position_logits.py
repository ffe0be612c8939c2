"""The prompt pass of choice scoring: the last position's logits by ``logits_to_keep=1`` vs by an index.

Choice scoring runs each batch of prompts once and needs the logits of its last position only. Hugging
Face's ``logits_to_keep=1`` slices the hidden states ``[:, -1:]`` (a strided view), and the output layer on
a strided 3-D input broadcasts its weight to every row; an index tensor (`choice_scoring.last_positions`)
gives a contiguous input. This times one prompt pass both ways on a randomly initialised model of a real
size (rounds alternate, one warm-up), checks that the logits are bitwise equal, and prints the ratio of the
medians (above 1: the index is faster).

    python benchmarks/last_position_logits.py                        # SmolLM2-135M shape, bf16 autocast
    python benchmarks/last_position_logits.py --batch 16 --length 250 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.models import (  # noqa: E402
    add_single_model_options,
    build_base_model,
    model_config,
    parse_single_model_options,
    random_batch,
)
from benchmarks.timing import median, paired_ratio, round_robin  # noqa: E402
from gatera_lab.evaluation.choice_scoring import last_positions  # noqa: E402


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_single_model_options(parser)
    parser.add_argument("--batch", type=int, default=16, help="prompts per pass (the study's eval batch)")
    parser.add_argument("--length", type=int, default=120, help="prompt tokens")
    parser.add_argument("--precision", choices=["bf16-mixed", "32"], default="bf16-mixed")
    args = parse_single_model_options(parser, argv)
    device = torch.device("cpu")
    bf16 = args.precision == "bf16-mixed"
    model = build_base_model(
        model_config(args.preset, args.layers), torch.bfloat16 if bf16 else torch.float32, device, seed=0
    ).eval()
    input_ids = random_batch(model.config.vocab_size, args.batch, args.length, device, seed=1)  # (B, T)
    keeps = {"logits_to_keep=1": 1, "index tensor": last_positions(args.length, 1, device)}
    logits = {}

    def prompt_pass(name: str):
        def call() -> None:
            autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with torch.no_grad(), autocast:
                logits[name] = model(input_ids=input_ids, use_cache=True, logits_to_keep=keeps[name]).logits

        return call

    wall, _ = round_robin({name: prompt_pass(name) for name in keeps}, device, args.repeats, warmup=1)
    equal = torch.equal(logits["logits_to_keep=1"], logits["index tensor"])
    ratio = paired_ratio(wall, "logits_to_keep=1", "index tensor")
    print(
        f"{args.preset} ({model.config.num_hidden_layers} layers, vocab {model.config.vocab_size}), "
        f"{args.batch} prompts x {args.length} tokens, {args.precision}, {torch.get_num_threads()} thread(s)"
    )
    for name in keeps:
        print(f"  {name:<17} median {median(wall[name]):.3f} s per prompt pass")
    print(f"  logits bitwise equal: {equal}; logits_to_keep=1 / index tensor = {ratio:.2f}x")
    return {"ratio": ratio, "equal": float(equal)}


if __name__ == "__main__":
    main()
