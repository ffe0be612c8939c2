"""Training throughput, old step against new, paired on the same real batches in one process.

The old step is the one of the baseline (`70c8176`): the forward returns (B, T, V) logits at every position
and `causal_lm_loss` keeps the target positions. The new step is `GateraModule.compute_losses` as it is now
(logits at the target positions only, and ``micro_batch_tokens`` micro-batches). Both run forward, loss
(with the gate entropy term) and backward on the same batches of a config's training loader, on one model
(SmolLM2-135M-Instruct, bfloat16 base, float32 adapters, bf16 autocast), in alternating order per batch, after
one warm-up batch; the optimizer step, the same for both, is left out. Tokens per second are the batches'
real tokens over the summed step times.

    python benchmarks/train_throughput.py --config configs/quick.yaml --batches 40 --threads 2

With ``--compile`` the two columns are today's step eager ("old") and with ``model.compile`` ("new"), on two
copies of the model (an ungated method: gated ones are refused), and the losses of each batch are compared.

    python benchmarks/train_throughput.py --compile --method lora --batches 20 --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatera_lab.adapters.token_gate import capture_gate_logits, masked_gate_entropy  # noqa: E402
from gatera_lab.datamodules import CommonsenseDataModule  # noqa: E402
from gatera_lab.models.model_loading import load_causal_lm  # noqa: E402
from gatera_lab.training.causal_lm_loss import causal_lm_loss  # noqa: E402
from gatera_lab.training.host_memory import bound_library_caches  # noqa: E402
from gatera_lab.training.module import GateraModule  # noqa: E402


def old_loss(module: GateraModule, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The baseline's `compute_losses`: every position's logits, then the loss on the targets."""
    with capture_gate_logits(module.model) as gate_logits:
        logits = module.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    task = causal_lm_loss(
        logits, batch["input_ids"], batch["attention_mask"], batch["response_mask"], "response"
    )
    if not module.gated:
        return task
    entropy = masked_gate_entropy(gate_logits.latest(), batch["attention_mask"])
    return task + module.method.entropy_weight * entropy


def new_loss(module: GateraModule, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return module.compute_losses(batch)["loss"]


def build(method: str, cap: int | None, compiled: bool) -> GateraModule:
    """The model with ``method`` at its start (float32 adapters), compiled or not, in training mode."""
    torch.manual_seed(0)
    module = GateraModule(method=method, micro_batch_tokens=cap, compile=compiled)
    module.attach_model(load_causal_lm("smollm2-135m-instruct", dtype=torch.bfloat16))
    for parameter in module.model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return module.train()


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/quick.yaml", help="overlay whose data and cap to use")
    parser.add_argument("--method", default="hira_gate")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="eager step against compiled decoder layers")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bound_library_caches()
    config = yaml.safe_load((ROOT / args.config).read_text())
    data = CommonsenseDataModule(**config["data"]["init_args"])
    data.setup("fit")
    cap = config["model"].get("micro_batch_tokens")
    modules = {side: build(args.method, cap, args.compile and side == "new") for side in ("old", "new")}
    if not args.compile:
        modules["new"] = modules["old"]  # one model: only the step differs
    seconds, tokens, counted = {"old": 0.0, "new": 0.0}, 0, 0
    steps = {"old": new_loss if args.compile else old_loss, "new": new_loss}
    worst = 0.0
    for index, batch in enumerate(data.train_dataloader()):
        if index > args.batches:
            break
        order = ("old", "new") if index % 2 == 0 else ("new", "old")
        losses: dict[str, float] = {}
        for side in order:
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = steps[side](modules[side], batch)
            loss.backward()
            modules[side].model.zero_grad(set_to_none=True)
            losses[side] = float(loss)
            if index > 0:  # the first batch warms both up
                seconds[side] += time.perf_counter() - start
        worst = max(worst, abs(losses["new"] - losses["old"]) / abs(losses["old"]))
        if index > 0:
            tokens += int(batch["attention_mask"].sum())
            counted += 1
    old_rate, new_rate = tokens / seconds["old"], tokens / seconds["new"]
    kind = "eager vs compiled" if args.compile else "old step vs new"
    print(
        f"{kind}: {args.method}, {args.config}, {counted} batches ({tokens} tokens), {args.threads} threads, cap {cap}"
    )
    print("| measure | old | new | new / old |\n| --- | ---: | ---: | ---: |")
    print(
        f"| training tokens / s (forward + backward) | {old_rate:.1f} | {new_rate:.1f} | {new_rate / old_rate:.2f} |"
    )
    print(
        f"largest relative loss difference on a batch: {worst:.1e} (a method with dropout draws other masks)"
    )
    return new_rate / old_rate


if __name__ == "__main__":
    main()
