"""The first-GPU check: every method's fit and test in bfloat16, checkpointing, logits at loss positions,
gatera-lab against PEFT, and each adapted layer's output dtype, on a random Llama-3.2-1B-shaped model.

Nothing is downloaded: the model is random (`benchmarks/models.py`'s ``llama-3.2-1b`` preset) with a
character tokenizer, the data synthetic (`benchmarks/gpu_check_inputs.py`). Every step writes under ``--out``;
``summary.md`` holds one table: step, outcome, seconds, peak memory (CUDA's ``max_memory_allocated`` on a GPU,
the resident set on a CPU), and the step's figures. A failing step is recorded and the next one runs.

    bash benchmarks/gpu_check.sh                 # on one GPU (about 8 minutes on an H100 expected)
    bash benchmarks/gpu_check.sh --dry           # tiny shapes on the CPU: tests the script itself
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import gpu_check_inputs, memory, models  # noqa: E402
from gatera_lab import build_method  # noqa: E402
from gatera_lab.adapters.adapter_method import adapter_layers, adapter_parameters  # noqa: E402
from gatera_lab.cli import main as cli_main  # noqa: E402
from gatera_lab.registry import available_methods  # noqa: E402
from gatera_lab.training.causal_lm_loss import causal_lm_loss  # noqa: E402
from gatera_lab.training.module import GateraModule  # noqa: E402

FIT_METHODS = ("lora", "dora", "hira", "lora_gate", "dora_gate", "hira_gate")


def fit_args(method: str, out: Path, dry: bool, steps: int, extra: list[str]) -> list[str]:
    """``gatera-lab fit`` of ``method`` with the gpu_bf16 overlay on the check's model and data, then test."""
    args = ["fit", "--config", method, "--config", "gpu_bf16", "--model.model", str(out / "model")]
    args += [
        "--data.source",
        "llm_adapters",
        "--data.data_dir",
        str(out / "data"),
        "--data.tasks",
        "[boolq, piqa]",
    ]
    args += ["--data.val_size", "8", "--data.batch_size", "4", "--data.eval_batch_size", "8"]
    args += ["--data.max_length", "128", "--model.warmup_steps", "0", "--trainer.max_steps", str(steps)]
    args += ["--trainer.max_epochs", "1", "--trainer.num_sanity_val_steps", "0"]
    args += ["--trainer.enable_progress_bar", "false", "--test_after_fit", "true"]
    args += ["--trainer.callbacks+=benchmarks.phase_cost.PhaseCost"]
    args += ["--trainer.default_root_dir", str(out / "runs")]
    return args + (["--trainer.accelerator", "cpu"] if dry else []) + extra


def run_fit(name: str, args: list[str], out: Path) -> dict[str, Any]:
    """Run the fit in this process; its `PhaseCost` record (seconds, peaks, first losses) is the result."""
    cost_path = out / f"{name}.cost.json"
    os.environ["GATERA_LAB_PHASE_COST"] = str(cost_path)
    status = cli_main(args)
    if status != 0:
        raise RuntimeError(f"gatera-lab fit exited {status}")
    cost = json.loads(cost_path.read_text())
    fit, test = cost.get("fit", {}), cost.get("test", {})
    losses = fit.get("losses", [])
    return {
        "seconds": fit.get("seconds", 0.0) + test.get("seconds", 0.0),
        "peak_bytes": max(
            fit.get("cuda_peak_bytes", fit.get("peak_bytes", 0)), test.get("cuda_peak_bytes", 0)
        ),
        "figures": f"losses {losses[0]:.3f} -> {losses[-1]:.3f}; test rows {test.get('rows')}"
        if losses
        else "",
    }


def layer_dtypes(device: torch.device, preset: str, layers: int | None) -> dict[str, Any]:
    """Every method's adapted layers under bf16 autocast on a bfloat16 base: the dtypes they output."""
    seen: dict[str, list[str]] = {}
    for method in available_methods():
        model = models.build_base_model(models.model_config(preset, layers), torch.bfloat16, device, seed=0)
        build_method(method, r=8).apply(model)
        outputs: set[str] = set()
        for _, layer in adapter_layers(model):
            layer.register_forward_hook(
                lambda module, args, output, seen=outputs: seen.add(str(output.dtype))
            )
        with torch.autocast(device.type, dtype=torch.bfloat16), torch.no_grad():
            model(input_ids=models.random_batch(model.config.vocab_size, 2, 16, device, seed=0))
        seen[method] = sorted(outputs)
        del model
    wrong = {method: dtypes for method, dtypes in seen.items() if dtypes != ["torch.bfloat16"]}
    if wrong:
        raise RuntimeError(f"adapted layers that do not output bfloat16: {wrong}")
    return {"figures": f"{len(seen)} methods: every adapted layer outputs torch.bfloat16"}


def loss_positions(
    device: torch.device, preset: str, layers: int | None, batch: int, length: int
) -> dict[str, Any]:
    """One training step with the logits at every position (then the loss) vs at the loss positions only
    (`GateraModule.compute_losses`): peak memory of each and the loss of each (equal within bf16 rounding)."""
    module = GateraModule(method=build_method("hira_gate", r=32, alpha=64), model="random")
    module.attach_model(
        models.build_base_model(models.model_config(preset, layers), torch.bfloat16, device, 0)
    )
    for parameter in adapter_parameters(module.model):
        parameter.data = parameter.data.float()
    input_ids = models.random_batch(module.model.config.vocab_size, batch, length, device, seed=1)  # (B, T)
    response = torch.zeros_like(input_ids)  # (B, T): the last 8 tokens of each row carry the loss
    response[:, -8:] = 1
    batch_dict = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "response_mask": response,
    }
    losses: dict[str, float] = {}

    def every_position() -> None:
        logits = module.model(
            input_ids=input_ids, attention_mask=batch_dict["attention_mask"]
        ).logits  # (B, T, V)
        loss = causal_lm_loss(logits, input_ids, batch_dict["attention_mask"], response, "response")
        loss.backward()
        losses["every position"] = float(loss.detach())

    def loss_positions_only() -> None:
        loss = module.compute_losses(batch_dict)["task"]
        loss.backward()
        losses["loss positions"] = float(loss.detach())

    peaks = {}
    for name, step in (("every position", every_position), ("loss positions", loss_positions_only)):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            peaks[name] = memory.measure_peak(step, device)
        module.model.zero_grad(set_to_none=True)
    ratio = peaks["every position"] / peaks["loss positions"] if all(peaks.values()) else float("nan")
    return {
        "peak_bytes": peaks["loss positions"],
        "figures": f"peak every position / loss positions {ratio:.2f}x; losses {losses}",
    }


def run_script(command: list[str], log: Path) -> dict[str, Any]:
    """A benchmark script in a subprocess; its output goes to ``log``, its last line to the figures."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{command[1]} exited {result.returncode}: {result.stderr.strip()[-300:]}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return {"figures": f"see {log.name}: {lines[-1][:120] if lines else ''}"}


def record(out: Path, rows: list[dict[str, Any]], name: str, step: Callable[[], dict[str, Any]]) -> None:
    """Run one step, catching its failure; append its row and rewrite the summary."""
    start = time.perf_counter()
    try:
        row = {"step": name, "outcome": "ok", **step()}
    except Exception as error:  # noqa: BLE001 (a failed step is a finding: record it, run the next)
        (out / f"{name}.error.txt").write_text(traceback.format_exc())
        row = {"step": name, "outcome": f"FAILED: {type(error).__name__}: {str(error)[:200]}"}
    row.setdefault("seconds", time.perf_counter() - start)
    rows.append(row)
    write_summary(out, rows)


def write_summary(out: Path, rows: list[dict[str, Any]]) -> None:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (dry run)"
    lines = [f"# GPU check on {device}", "", f"torch {torch.__version__}", ""]
    lines += ["| step | outcome | seconds | peak memory (GiB) | figures |", "|---|---|---:|---:|---|"]
    for row in rows:
        peak = row.get("peak_bytes")
        peak_text = f"{peak / 2**30:.2f}" if peak else "-"
        lines.append(
            f"| {row['step']} | {row['outcome']} | {row['seconds']:.1f} | {peak_text} | {row.get('figures', '')} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu_check"))
    parser.add_argument("--dry", action="store_true", help="tiny shapes on the CPU (tests the script)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    preset, layers, steps = ("tiny", None, 2) if args.dry else ("llama-3.2-1b", None, 5)
    device = torch.device("cpu" if args.dry else "cuda")
    rows: list[dict[str, Any]] = []
    record(out, rows, "inputs", lambda: _inputs(out, preset, layers))
    for method in FIT_METHODS:
        record(
            out,
            rows,
            f"fit_{method}",
            lambda m=method: run_fit(f"fit_{m}", fit_args(m, out, args.dry, steps, []), out),
        )
    checkpointed = fit_args("hira_gate", out, args.dry, steps, ["--config", "grad_checkpointing"])
    record(
        out,
        rows,
        "fit_hira_gate_checkpointed",
        lambda: run_fit("fit_hira_gate_checkpointed", checkpointed, out),
    )
    record(out, rows, "layer_dtypes", lambda: layer_dtypes(device, preset, layers))
    batch, length = (2, 32) if args.dry else (8, 256)
    record(out, rows, "loss_positions", lambda: loss_positions(device, preset, layers, batch, length))
    train_step = [sys.executable, str(Path(__file__).parent / "train_step.py"), "--preset", preset]
    train_step += ["--device", device.type, "--dtype", "bf16", "--repeats", "1" if args.dry else "5"]
    train_step += ["--batch", str(batch), "--seq-len", str(length), "--output-dir", str(out / "train_step")]
    record(out, rows, "train_step_vs_peft", lambda: run_script(train_step, out / "train_step.log"))
    failed = [row["step"] for row in rows if row["outcome"] != "ok"]
    print((out / "summary.md").read_text())
    return 1 if failed else 0


def _inputs(out: Path, preset: str, layers: int | None) -> dict[str, Any]:
    gpu_check_inputs.write_model_folder(out / "model", preset, layers)
    gpu_check_inputs.write_data_folder(out / "data")
    return {"figures": f"random {preset} model and synthetic BoolQ/PIQA rows"}


if __name__ == "__main__":
    sys.exit(main())
