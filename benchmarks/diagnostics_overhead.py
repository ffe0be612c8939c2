"""Training-step overhead of the gate diagnostic callbacks, on a small randomly initialised Llama.

Each contender is a short `Trainer.fit` of `GateraModule` (hira_gate by default) on random token batches
(half prompt, half response), with a TensorBoard logger, timed step by step (the time between consecutive
``on_train_batch_start`` calls: forward, backward, optimizer step, callbacks and logging). Contenders:

- ``none``: no diagnostic callback;
- ``entropy``, ``statistics``, ``prefill_decode``, ``gradient_masking``: one callback diagnosing every step
  (``every_n_steps: 1``);
- ``probe``: `PrefillDecodeMonitor` running its generation probe after every step.

Fits run round-robin (each round runs every contender once, in a rotating order); per round, the median
step time after ``--warmup`` steps is taken, and the extra cost of a diagnosed step is
``t_c - t_none`` (median over rounds). A callback on its default cadence pays that once every N steps, so
the default configuration's step-time ratio is estimated as

    ratio = 1 + sum_c (t_c - t_none) / (N_c * t_none),   N = 50 (entropy, statistics, prefill_decode),
                                                          200 (gradient_masking), 500 (probe).

Steps that are not diagnosed cost one modulo per callback. The probe's extra run after each validation is not
a training step and is not counted. Example::

    python benchmarks/diagnostics_overhead.py --layers 4 --batch 2 --seq-len 128 --threads 1 --clock process
    python benchmarks/diagnostics_overhead.py --layers 8 --batch 8 --seq-len 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import models  # noqa: E402
from gatera_lab import build_method  # noqa: E402
from gatera_lab.diagnostics import (  # noqa: E402
    GateEntropyMonitor,
    GateStatisticsMonitor,
    GradientMaskingMonitor,
    PrefillDecodeMonitor,
)
from gatera_lab.training.module import GateraModule  # noqa: E402

NEVER = 10**9  # a cadence that diagnoses step 0 only (a warm-up step)
DEFAULT_EVERY = {"entropy": 50, "statistics": 50, "prefill_decode": 50, "gradient_masking": 200, "probe": 500}


class ByteTokenizer:
    """Bytes as token ids (offset 3), enough for the probe on a random model; never emits end-of-sequence."""

    eos_token_id = None

    def __call__(self, text: str, return_tensors: str | None = None) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.tensor([[byte + 3 for byte in text.encode()]])}

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i - 3) if 3 <= i < 259 else "?" for i in ids)


class RandomTokens(L.LightningDataModule):
    """Random sequences of ``seq_len`` tokens: the first half prompt, the second half response."""

    def __init__(self, vocab_size: int, batch: int, seq_len: int, batches: int, seed: int) -> None:
        super().__init__()
        self.tokenizer = ByteTokenizer()
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, vocab_size, (batches * batch, seq_len), generator=generator)  # (N, T)
        response = torch.zeros_like(ids)
        response[:, seq_len // 2 :] = 1
        self.rows = [
            {"input_ids": i, "attention_mask": torch.ones_like(i), "response_mask": r}
            for i, r in zip(ids, response, strict=True)
        ]
        self.batch = batch

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.rows, batch_size=self.batch)


class StepTimer(Callback):
    """Seconds between consecutive train-batch starts (the last step ends at ``on_train_end``).

    ``clock="wall"`` measures elapsed time; ``clock="process"`` the CPU time of this process (all its threads),
    which other programs on a shared CPU disturb far less (use it with ``--threads 1`` on a CPU).
    """

    def __init__(self, device: torch.device, clock: str = "wall") -> None:
        self.device = device
        self.clock = time.process_time if clock == "process" else time.perf_counter
        self.starts: list[float] = []

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self.clock()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(self._now())

    def on_train_end(self, trainer, pl_module) -> None:
        self.starts.append(self._now())

    def step_times(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]


def contender_callbacks(name: str, max_new_tokens: int) -> list[Callback]:
    if name == "none":
        return []
    if name == "entropy":
        return [GateEntropyMonitor(every_n_steps=1)]
    if name == "statistics":
        return [GateStatisticsMonitor(every_n_steps=1)]
    if name == "prefill_decode":
        return [PrefillDecodeMonitor(every_n_steps=1, probe_every_n_steps=None, write_png=False)]
    if name == "probe":
        return [
            PrefillDecodeMonitor(
                every_n_steps=NEVER, probe_every_n_steps=1, max_new_tokens=max_new_tokens, write_png=True
            )
        ]
    if name == "gradient_masking":
        return [GradientMaskingMonitor(every_n_steps=1)]
    raise ValueError(f"unknown contender {name!r}")


def fit_once(
    name: str, base: torch.nn.Module, args: argparse.Namespace, device: torch.device, root: Path
) -> float:
    """Median step time (s) of one fit of contender ``name`` after ``args.warmup`` steps."""
    model = models.share_frozen_copy(base)
    module = GateraModule(
        method=build_method(args.method, r=args.r, entropy_weight=0.01, gate_weight_init_std=0.1),
        model="random-benchmark-model",
        warmup_steps=0,
    )
    module.attach_model(model)
    timer = StepTimer(device, args.clock)
    steps = args.warmup + args.steps
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_steps=steps,
        logger=TensorBoardLogger(root, name=name),
        callbacks=[timer, *contender_callbacks(name, args.max_new_tokens)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    data = RandomTokens(base.config.vocab_size, args.batch, args.seq_len, steps, args.seed)
    trainer.fit(module, data)
    return statistics.median(timer.step_times()[args.warmup :])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=tuple(models.PRESETS), default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=4, help="decoder layers (default 4)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--dtype", choices=tuple(models.DTYPES), default="fp32")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=("wall", "process"),
        default="wall",
        help="process: CPU time, robust on a shared CPU",
    )
    parser.add_argument("--method", default="hira_gate")
    parser.add_argument("--r", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per fit")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of each fit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=16, help="tokens the probe generates")
    parser.add_argument("--contenders", default="none," + ",".join(DEFAULT_EVERY))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    for option in ("layers", "batch", "seq_len", "r", "steps", "rounds"):
        if getattr(args, option) <= 0:
            parser.error(f"option --{option.replace('_', '-')} must be positive, got {getattr(args, option)}")
    names = args.contenders.split(",")
    unknown = [name for name in names if name != "none" and name not in DEFAULT_EVERY]
    if unknown or "none" not in names:
        parser.error(
            f"option --contenders must include 'none' and name only {list(DEFAULT_EVERY)}, got {names}"
        )
    args.contender_names = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = models.model_config(args.preset, args.layers)
    base = models.build_base_model(config, models.DTYPES[args.dtype], device, args.seed)
    names = args.contender_names
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as root:
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(fit_once(name, base, args, device, Path(root)))
            print(
                f"round {round_index + 1}/{args.rounds}: "
                + ", ".join(f"{n} {times[n][-1]:.4f}s" for n in names)
            )
    base_time = statistics.median(times["none"])
    extra = {
        name: statistics.median(t - b for t, b in zip(times[name], times["none"], strict=True))
        for name in names
        if name != "none"
    }
    amortized = {name: extra[name] / (DEFAULT_EVERY[name] * base_time) for name in extra}
    ratio = 1.0 + sum(amortized.values())
    print(
        f"\n{args.method} r={args.r} on {args.preset} x{args.layers} layers, batch {args.batch} x {args.seq_len} "
        f"tokens, {args.dtype}, {device}, threads {torch.get_num_threads()}, {args.clock} clock"
    )
    print(f"step time without diagnostics: {base_time * 1000:.1f} ms (median over rounds)")
    print(f"{'callback':<18} {'diagnosed step +ms':>18} {'x step':>8} {'every N':>8} {'amortized':>10}")
    for name in extra:
        print(
            f"{name:<18} {extra[name] * 1000:>18.1f} {extra[name] / base_time:>8.3f} "
            f"{DEFAULT_EVERY[name]:>8} {amortized[name]:>9.2%}"
        )
    print(f"estimated step-time ratio with the default cadences: {ratio:.4f}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "settings": {k: v for k, v in vars(args).items() if k not in ("output", "contender_names")},
            "device": str(device),
            "threads": torch.get_num_threads(),
            "step_seconds": times,
            "extra_seconds": extra,
            "default_every": DEFAULT_EVERY,
            "estimated_ratio": ratio,
        }
        temporary = args.output.with_name(f".{args.output.name}.tmp")
        temporary.write_text(json.dumps(result, indent=2))
        temporary.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
