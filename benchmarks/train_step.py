"""Training-step time and memory of gatera-lab's methods against HF PEFT, on one Llama-shaped model.

One run builds a randomly initialised Llama (SmolLM2-135M's shape by default), wraps it as every contender
(the frozen base forward alone as a reference; PEFT's LoRA, DoRA, HiRA; gatera-lab's lora, dora, hira and
their gated versions), all sharing the same frozen weights, batch and sequence length, and times a full
training step (forward, loss, backward, AdamW step over the trainable parameters) round-robin: each round
runs every contender once, in a rotating order; warm-up rounds are discarded; medians are reported.
Memory is measured in separate, untimed steps (see ``benchmarks/memory.py`` for what each number means).

``--mode gate-skip`` times inference (eval, no grad) of the gated methods with
``gate_skip_threshold`` at a few thresholds on random inputs: tokens whose gate is below the threshold
skip the adapter and get exactly the base output.

Examples::

    python benchmarks/train_step.py                                   # SmolLM2-135M shape, CPU
    python benchmarks/train_step.py --layers 4 --batch 4 --seq-len 128 --repeats 15
    python benchmarks/train_step.py --preset llama-3.2-1b --dtype bf16 --device cuda
    python benchmarks/train_step.py --mode gate-skip --thresholds 0.25,0.5,0.75
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import contenders as contenders_lib  # noqa: E402
from benchmarks import memory, models, report, timing  # noqa: E402
from gatera_lab import adapter_layers  # noqa: E402
from gatera_lab.adapters.gate_skip import count_skipped_tokens, gate_skip_threshold  # noqa: E402

DEFAULT_TARGETS = "q_proj,k_proj,v_proj,up_proj,down_proj"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("train", "gate-skip", "all"), default="train")
    parser.add_argument("--preset", choices=tuple(models.PRESETS), default="smollm2-135m")
    parser.add_argument("--layers", type=int, default=None, help="decoder layers (default: the preset's)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--dtype", choices=tuple(models.DTYPES), default="fp32")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (auto: cuda if available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=("auto", "wall", "cpu"),
        default="auto",
        help="time the ratios use: wall clock or process CPU time (auto: cpu on a CPU device, else wall)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds")
    parser.add_argument("--r", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=64.0)
    parser.add_argument("--lora-dropout", type=float, default=0.05, help="lora, lora_gate, peft_lora")
    parser.add_argument("--dora-dropout", type=float, default=0.05, help="dora, dora_gate, peft_dora")
    parser.add_argument("--hira-dropout", type=float, default=0.0, help="hira, hira_gate, peft_hira")
    parser.add_argument("--target-modules", default=DEFAULT_TARGETS)
    parser.add_argument(
        "--contenders", default=",".join(contenders_lib.ALL_CONTENDERS), help="train mode: which to run"
    )
    parser.add_argument("--thresholds", default="0.25,0.5,0.75", help="gate-skip mode: gate thresholds")
    parser.add_argument(
        "--gate-init-std", type=float, default=1.0, help="gate-skip mode: gate weights ~ N(0, std^2 / d_in)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    parser.add_argument("--memory-rounds", type=int, default=3, help="untimed rounds for the step peak")
    parser.add_argument("--no-memory", action="store_true", help="skip the (untimed) memory steps")
    args = parser.parse_args(argv)
    for option in ("batch", "seq_len", "r", "memory_rounds"):
        if getattr(args, option) <= 0:
            parser.error(f"option --{option.replace('_', '-')} must be positive, got {getattr(args, option)}")
    unknown = [
        n for n in args.contenders.split(",") if n.strip() and n.strip() not in contenders_lib.ALL_CONTENDERS
    ]
    if unknown:
        parser.error(
            f"option --contenders: unknown {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(contenders_lib.ALL_CONTENDERS)}"
        )
    try:
        thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    except ValueError:
        parser.error(f"option --thresholds: expected comma-separated numbers, got {args.thresholds!r}")
    if not thresholds or any(not 0.0 <= t <= 1.0 for t in thresholds):
        parser.error(f"option --thresholds: expected numbers in [0, 1], got {args.thresholds!r}")
    for option in ("lora_dropout", "dora_dropout", "hira_dropout"):
        if not 0.0 <= getattr(args, option) < 1.0:
            parser.error(
                f"option --{option.replace('_', '-')} must lie in [0, 1), got {getattr(args, option)}"
            )
    return args


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"option --device {name}: CUDA is not available on this machine")
    return device


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cpu_name() -> str:
    """The CPU model (Linux ``/proc/cpuinfo``), else what `platform.processor` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def environment(args: argparse.Namespace, device: torch.device) -> dict:
    import peft
    import transformers

    info = {
        "command": "python " + " ".join([sys.argv[0], *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }
    info["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return info


# ---------------------------------------------------------------------------------------------- train mode
def make_train_step(contender: contenders_lib.Contender, input_ids: torch.Tensor):
    model, optimizer = contender.model, contender.optimizer

    def step() -> None:
        if optimizer is None:  # the frozen base: nothing requires grad, so this is the forward alone
            model(input_ids=input_ids, labels=input_ids)
            return
        optimizer.zero_grad(set_to_none=True)
        loss = model(input_ids=input_ids, labels=input_ids).loss
        loss.backward()
        optimizer.step()

    return step


def measure_memory(
    contenders: dict[str, contenders_lib.Contender],
    input_ids: torch.Tensor,
    device: torch.device,
    rounds: int,
) -> dict[str, dict]:
    """Saved-for-backward bytes (once: deterministic) and the median step peak over ``rounds`` rounds."""
    peaks: dict[str, list[int]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, contender in contenders.items():
            peak = memory.measure_peak(make_train_step(contender, input_ids), device)
            if peak is not None:
                peaks[name].append(peak)
    results = {}
    for name, contender in contenders.items():
        model, optimizer = contender.model, contender.optimizer
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        with memory.count_saved_bytes(model) as saved:
            loss = model(input_ids=input_ids, labels=input_ids).loss
        if optimizer is not None:
            loss.backward()
            optimizer.zero_grad(set_to_none=True)
        del loss
        state = memory.state_bytes(contender.trainable, optimizer)
        peak = int(timing.median(peaks[name])) if peaks[name] else None
        results[name] = {
            "saved_bytes": saved["bytes"],
            "peak_bytes": peak,
            "peak_bytes_all": peaks[name],
            "state_bytes": state,
            "train_bytes": None if peak is None else peak + state,
        }
    return results


def run_train(args: argparse.Namespace, device: torch.device, base: torch.nn.Module) -> dict:
    names = [name.strip() for name in args.contenders.split(",") if name.strip()]
    dropouts = {"lora": args.lora_dropout, "dora": args.dora_dropout, "hira": args.hira_dropout}
    targets = [name.strip() for name in args.target_modules.split(",") if name.strip()]
    input_ids = models.random_batch(base.config.vocab_size, args.batch, args.seq_len, device, args.seed + 1)
    contenders = {}
    for name in names:
        contenders[name] = contenders_lib.build_contender(
            name,
            models.share_frozen_copy(base),
            r=args.r,
            alpha=args.alpha,
            dropouts=dropouts,
            target_modules=targets,
        )
    log(f"train mode: {len(contenders)} contenders, batch {args.batch} x {args.seq_len} tokens on {device}")
    steps = {name: make_train_step(c, input_ids) for name, c in contenders.items()}
    wall, cpu = timing.round_robin(steps, device, args.repeats, args.warmup, progress=log)
    times, other = (cpu, wall) if args.clock == "cpu" else (wall, cpu)

    results: dict[str, dict] = {}
    for name, contender in contenders.items():
        results[name] = {
            "dropout": contender.dropout,
            "trainable_parameters": sum(p.numel() for p in contender.trainable),
            "median_s": timing.median(times[name]),
            "median_wall_s": timing.median(wall[name]),
            "median_cpu_s": timing.median(cpu[name]),
            "wall_s": wall[name],
            "cpu_s": cpu[name],
        }
    if not args.no_memory:
        if device.type == "cpu":
            memory.configure_cpu_allocator()  # after timing: it makes every large allocation an mmap
        log(f"memory: {args.memory_rounds} untimed round(s) of steps")
        for name, values in measure_memory(contenders, input_ids, device, args.memory_rounds).items():
            results[name].update(values)

    ratios = []
    for numerator, denominator, limit in report.TIME_TARGETS:
        if numerator in results and denominator in results:
            value = results[numerator]["median_s"] / results[denominator]["median_s"]
            paired = timing.paired_ratio(times, numerator, denominator)
            other_value = timing.median(other[numerator]) / timing.median(other[denominator])
            ratios.append(dict(kind="time", numerator=numerator, denominator=denominator, limit=limit,
                               value=value, paired=paired, other_clock=other_value))  # fmt: skip
    if not args.no_memory:
        for numerator, denominator in report.MEMORY_TARGETS:
            if numerator in results and denominator in results:
                for metric in ("train_bytes", "saved_bytes"):
                    a, b = results[numerator][metric], results[denominator][metric]
                    value = None if a is None or b is None else a / b
                    ratios.append(dict(kind=metric, numerator=numerator, denominator=denominator, limit=1.0,
                                       value=value, paired=None, other_clock=None))  # fmt: skip
    return {"clock": args.clock, "results": results, "ratios": ratios}


def train_markdown(train: dict) -> str:
    results = train["results"]
    clock = train["clock"]
    other = "wall" if clock == "cpu" else "cpu"
    base_time = results.get("base", {}).get("median_s")
    rows = []
    for name, row in results.items():
        rows.append([
            name,
            f"{row['dropout']:g}",
            f"{row['trainable_parameters']:,}",
            f"{row['median_s']:.3f}",
            f"{min(row[f'{clock}_s']):.3f}",
            f"{row[f'median_{other}_s']:.3f}",
            "" if base_time is None else f"{row['median_s'] / base_time:.2f}",
            report.mib(row.get("train_bytes")),
            report.mib(row.get("peak_bytes")),
            report.mib(row.get("saved_bytes")),
        ])  # fmt: skip
    header = ["contender", "dropout", "trainable", f"median {clock} s", f"min {clock} s", f"median {other} s",
              "x base fwd", "train MiB", "step peak MiB", "saved MiB"]  # fmt: skip
    ratio_rows = []
    for ratio in train["ratios"]:
        value = ratio["value"]
        paired = ratio["paired"]
        ratio_rows.append([
            f"{ratio['kind']}: {ratio['numerator']} / {ratio['denominator']}",
            "n/a" if value is None else f"{value:.3f}",
            "" if paired is None else f"{paired:.3f}",
            "" if ratio["other_clock"] is None else f"{ratio['other_clock']:.3f}",
            f"<= {ratio['limit']:.2f}",
            report.verdict(value, ratio["limit"]),
        ])  # fmt: skip
    return (
        report.markdown_table(header, rows)
        + "\n\n"
        + report.markdown_table(
            ["ratio", "of medians", "paired median", f"of {other} medians", "target", "verdict"], ratio_rows
        )
        + "\n"
    )


# ---------------------------------------------------------------------------------------------- gate-skip mode
def randomize_gated_model(model: torch.nn.Module, gate_std: float, seed: int) -> None:
    """Spread the gates (weights ~ N(0, gate_std^2 / d_in)) and give B non-zero values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in adapter_layers(model):
            gate_weight = layer.token_gate.weight
            noise = (
                torch.randn(gate_weight.shape, generator=generator)
                * gate_std
                / math.sqrt(gate_weight.shape[1])
            )
            gate_weight.copy_(noise.to(gate_weight))
            layer.lora_B.copy_((torch.randn(layer.lora_B.shape, generator=generator) * 0.02).to(layer.lora_B))


def run_gate_skip(args: argparse.Namespace, device: torch.device, base: torch.nn.Module) -> dict:
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    dropouts = {"lora": args.lora_dropout, "dora": args.dora_dropout, "hira": args.hira_dropout}
    targets = [name.strip() for name in args.target_modules.split(",") if name.strip()]
    input_ids = models.random_batch(base.config.vocab_size, args.batch, args.seq_len, device, args.seed + 1)
    calls, skipped = {}, {}
    base_model = models.share_frozen_copy(base).eval()

    def base_forward() -> None:
        with torch.no_grad():
            base_model(input_ids=input_ids)

    calls["base"] = base_forward
    for name in ("lora_gate", "dora_gate", "hira_gate"):
        model = contenders_lib.build_contender(
            name, models.share_frozen_copy(base), r=args.r, alpha=args.alpha, dropouts=dropouts,
            target_modules=targets,
        ).model.eval()  # fmt: skip
        randomize_gated_model(model, args.gate_init_std, args.seed + 2)
        for threshold in [None, *thresholds]:
            key = f"{name}@{'off' if threshold is None else f'{threshold:g}'}"

            def forward(model=model, threshold=threshold) -> None:
                with torch.no_grad(), gate_skip_threshold(model, threshold):
                    model(input_ids=input_ids)

            calls[key] = forward
            if threshold is not None:
                with (
                    torch.no_grad(),
                    gate_skip_threshold(model, threshold),
                    count_skipped_tokens(model) as count,
                ):
                    model(input_ids=input_ids)
                skipped[key] = count.fraction
    log(
        f"gate-skip mode: {len(calls)} forward variants, batch {args.batch} x {args.seq_len} tokens on {device}"
    )
    wall, cpu = timing.round_robin(calls, device, args.repeats, args.warmup, progress=log)
    times = cpu if args.clock == "cpu" else wall
    results = {}
    for key in calls:
        method = key.split("@")[0]
        reference = f"{method}@off" if method != "base" else "base"
        results[key] = {
            "median_s": timing.median(times[key]),
            "wall_s": wall[key],
            "cpu_s": cpu[key],
            "skipped_fraction": skipped.get(key, 0.0),
            "speedup_vs_no_skip": timing.median(times[reference]) / timing.median(times[key]),
            "paired_speedup": 1.0 / timing.paired_ratio(times, key, reference),
        }
    return {"clock": args.clock, "thresholds": thresholds, "results": results}


def gate_skip_markdown(gate_skip: dict) -> str:
    rows = []
    base_time = gate_skip["results"]["base"]["median_s"]
    for key, row in gate_skip["results"].items():
        rows.append([
            key,
            f"{100 * row['skipped_fraction']:.1f}%",
            f"{row['median_s'] * 1000:.1f}",
            f"{row['speedup_vs_no_skip']:.2f}",
            f"{row['paired_speedup']:.2f}",
            f"{row['median_s'] / base_time:.2f}",
        ])  # fmt: skip
    header = ["forward (method@threshold)", "tokens skipped", f"median {gate_skip['clock']} ms", "speed-up vs @off",
              "paired speed-up", "x base fwd"]  # fmt: skip
    return report.markdown_table(header, rows) + "\n"


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.clock == "auto":
        args.clock = "cpu" if device.type == "cpu" else "wall"
    config = models.model_config(args.preset, args.layers)
    base = models.build_base_model(config, models.DTYPES[args.dtype], device, args.seed)
    payload = {"environment": environment(args, device)}
    markdown = [f"Command: `{payload['environment']['command']}`\n"]
    if args.mode in ("train", "all"):
        payload["train"] = run_train(args, device, base)
        markdown.append(train_markdown(payload["train"]))
    if args.mode in ("gate-skip", "all"):
        payload["gate_skip"] = run_gate_skip(args, device, base)
        markdown.append(gate_skip_markdown(payload["gate_skip"]))
    text = "\n".join(markdown)
    print(text)
    stem = "train_step" if args.mode != "gate-skip" else "gate_skip"
    report.write_json(args.output_dir / f"{stem}.json", payload)
    report.write_atomic(args.output_dir / f"{stem}.md", text)
    log(f"wrote {args.output_dir / f'{stem}.json'} and {args.output_dir / f'{stem}.md'}")
    return payload


if __name__ == "__main__":
    main()
