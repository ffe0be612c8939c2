"""The training loss on a few response tokens: log-softmax over every position vs over the selected ones.

With the answer-text format a batch holds hundreds of prompt tokens per row and a handful of answer tokens,
but the plain loss (``F.cross_entropy`` over all B (T-1) positions with ``ignore_index``) runs a float32
log-softmax, and its backward, over every position's full vocabulary. `gatera_lab.training.causal_lm_loss`
runs it on the selected positions only. This times a training step (forward, loss, backward) of a method on a
randomly initialised model of a real size both ways (rounds alternate, one warm-up), measures each step's
peak memory in separate untimed steps, checks that the loss and every adapter gradient are bitwise equal,
and prints the ratios (above 1: the selected-position loss is faster / smaller).

    python benchmarks/response_loss.py                       # hira_gate on SmolLM2-135M's shape, bf16 autocast
    python benchmarks/response_loss.py --method lora --batch 8 --length 400 --answer-tokens 6 --threads 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import memory, models  # noqa: E402
from benchmarks.timing import median, paired_ratio, round_robin  # noqa: E402
from gatera_lab.registry import build_method  # noqa: E402
from gatera_lab.training.causal_lm_loss import causal_lm_loss  # noqa: E402


def all_positions_loss(logits: Tensor, input_ids: Tensor, response_mask: Tensor) -> Tensor:
    """The plain formula: float32 cross-entropy over every position, non-response targets ignored."""
    targets = input_ids[:, 1:].masked_fill(response_mask[:, 1:] == 0, -100)  # (B, T-1)
    predictions = logits[:, :-1].float()  # (B, T-1, V)
    return F.cross_entropy(
        predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1), ignore_index=-100
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    models.add_single_model_options(parser)
    parser.add_argument(
        "--method", default="hira_gate", help="a registered method (r 32 on its default targets)"
    )
    parser.add_argument("--batch", type=int, default=8, help="rows per step (the study's batch)")
    parser.add_argument("--length", type=int, default=250, help="tokens per row")
    parser.add_argument("--answer-tokens", type=int, default=8, help="response tokens at the end of each row")
    args = models.parse_single_model_options(parser, argv)
    device = torch.device("cpu")
    model = models.build_base_model(
        models.model_config(args.preset, args.layers), torch.bfloat16, device, seed=0
    )
    build_method(args.method, r=32, alpha=64).apply(model)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():  # float32 adapters (as the CLI trains them), moved off their identity start
        for parameter in trainable:
            parameter.data = parameter.data.float()
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    model.train()
    input_ids = models.random_batch(
        model.config.vocab_size, args.batch, args.length, device, seed=1
    )  # (B, T)
    attention = torch.ones_like(input_ids)  # (B, T)
    response = torch.zeros_like(input_ids)  # (B, T)
    response[:, -args.answer_tokens :] = 1
    losses = {
        "all positions": lambda logits: all_positions_loss(logits, input_ids, response),
        "selected positions": lambda logits: causal_lm_loss(
            logits, input_ids, attention, response, "response"
        ),
    }
    results: dict[str, tuple[Tensor, list[Tensor]]] = {}

    def training_step(name: str):
        def call() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(input_ids=input_ids, attention_mask=attention).logits  # (B, T, V)
                loss = losses[name](logits)
            loss.backward()
            results[name] = (loss.detach(), [parameter.grad for parameter in trainable])

        return call

    steps = {name: training_step(name) for name in losses}
    wall, _ = round_robin(steps, device, args.repeats, warmup=1)
    (loss_a, grads_a), (loss_b, grads_b) = results["all positions"], results["selected positions"]
    equal = torch.equal(loss_a, loss_b) and all(
        torch.equal(a, b) for a, b in zip(grads_a, grads_b, strict=True)
    )
    memory.configure_cpu_allocator()
    peaks = {name: memory.measure_peak(step, device) for name, step in steps.items()}
    print(
        f"{args.method} on {args.preset} ({model.config.num_hidden_layers} layers, vocab "
        f"{model.config.vocab_size}), {args.batch} rows x {args.length} tokens, {args.answer_tokens} response "
        f"tokens per row, bf16 autocast, {torch.get_num_threads()} thread(s)"
    )
    for name in losses:
        peak = "n/a" if peaks[name] is None else f"{peaks[name] / 2**30:.2f} GiB"
        print(
            f"  {name:<18} median {median(wall[name]):.3f} s per training step, peak {peak} above the start"
        )
    ratio = paired_ratio(wall, "all positions", "selected positions")
    memory_ratio = (
        peaks["all positions"] / peaks["selected positions"] if None not in peaks.values() else float("nan")
    )
    print(
        f"  loss and {len(trainable)} adapter gradients bitwise equal: {equal}; all / selected positions: "
        f"time {ratio:.2f}x, peak memory {memory_ratio:.2f}x"
    )
    return {"ratio": ratio, "memory_ratio": memory_ratio, "equal": float(equal)}


if __name__ == "__main__":
    main()
