"""What a whole run costs, old code against new in one run: peak memory and time per phase, with a breakdown.

Each scenario is a real `gatera-lab` command on SmolLM2-135M-Instruct and the commonsense data (offline,
from the cache that `make demo` fills). It runs once with the code of ``--baseline`` (a git revision,
unpacked from git into a temporary folder and put first on ``PYTHONPATH``) and once with the working tree,
one after the other, each in a fresh process and an empty folder, with `benchmarks.phase_cost.PhaseCost`
recording each phase and ``os.wait4`` the process's own peak resident set size. Then it prints a Markdown
table of old, new and their ratio.

    python benchmarks/run_cost.py --baseline 70c8176 --scenario demo --threads 2
    python benchmarks/run_cost.py --baseline 70c8176 --scenario study-fit --threads 1

Scenarios:
- ``demo``: `make demo`'s command (hira_gate + quick: fit 100 steps, validation twice, test on 400 rows);
- ``study-fit``: a study-overlay fit (``--study-method``, dora by default, whose fits peaked highest in the
  study, + configs/sweeps/study_overlay.yaml) cut to ``--study-steps`` optimizer steps, no test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GiB = 1024**3
SCENARIOS = {
    "demo": ["fit", "--config", "configs/hira_gate.yaml", "--config", "configs/quick.yaml"],
    "study-fit": [
        "fit",
        "--config",
        "configs/hira_gate.yaml",
        "--config",
        "configs/sweeps/study_overlay.yaml",
    ],
}
VOCAB = 49152  # SmolLM2's output layer


def unpack_revision(revision: str, folder: Path) -> Path:
    """The package tree of ``revision`` as it installs (gatera_lab with methods/, datamodules/, configs/ inside)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "gatera_lab", "methods", "datamodules", "configs"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    for name in ("methods", "datamodules", "configs"):
        shutil.move(str(folder / name), str(folder / "gatera_lab" / name))
    shutil.copytree(folder / "gatera_lab" / "configs", folder / "configs")  # the paths the commands name
    return folder


def scenario_args(name: str, study_steps: int, study_method: str) -> list[str]:
    args = [arg.format(method=study_method) for arg in SCENARIOS[name]]
    if name == "study-fit":
        args += [
            "--trainer.max_steps",
            str(study_steps),
            "--trainer.val_check_interval",
            "null",
            "--trainer.limit_val_batches",
            "0",
        ]
    return args + [
        "--trainer.callbacks+=benchmarks.phase_cost.PhaseCost",
        "--trainer.enable_progress_bar",
        "false",
    ]


def run_once(source: Path | None, config_root: Path, args: list[str], threads: int, extra: list[str]) -> dict:
    """One run in an empty folder; ``source`` None means the working tree (the installed package)."""
    with tempfile.TemporaryDirectory(prefix="run-cost-") as folder:
        record_path = Path(folder) / "phase_cost.json"
        paths = [str(source)] if source is not None else []
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)]),
            "OMP_NUM_THREADS": str(threads),
            "GATERA_LAB_PHASE_COST": str(record_path),
        }
        resolved = [str(config_root / arg) if arg.startswith("configs/") else arg for arg in [*args, *extra]]
        command = [sys.executable, "-m", "gatera_lab.cli", *resolved]
        start = time.perf_counter()
        with open(Path(folder) / "output.log", "w") as log:
            process = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if status != 0:
            sys.stdout.write((Path(folder) / "output.log").read_text()[-4000:])
            raise SystemExit(f"run_cost: {' '.join(command)} failed (status {status})")
        record = json.loads(record_path.read_text())
        # the process's peak: the largest phase peak, or the lifetime high-water mark for what ran outside the
        # phases (ru_maxrss counts only from the last reset of the phase's own high-water mark)
        phases = [record.get(phase, {}).get("peak_bytes", 0) for phase in ("fit", "test")]
        record["process_peak_bytes"] = max(usage.ru_maxrss * 1024, *phases)  # Linux reports KiB
        record["seconds"] = seconds
        return record


def rows_of(record: dict) -> dict[str, float | None]:
    fit, test = record.get("fit", {}), record.get("test", {})
    return {
        "process peak (GiB)": record["process_peak_bytes"] / GiB,
        "fit peak (GiB)": fit.get("peak_bytes", 0) / GiB or None,
        "test peak (GiB)": test.get("peak_bytes", 0) / GiB or None,
        "wall time (s)": record["seconds"],
        "fit time (s)": fit.get("seconds"),
        "train tokens / s": fit["train_tokens"] / fit["train_seconds"] if fit.get("train_seconds") else None,
        "test time (s)": test.get("seconds"),
        "test rows / s": test["rows"] / test["seconds"] if test.get("seconds") else None,
        "before the model (GiB)": record.get("process_bytes", 0) / GiB,
        "base weights (GiB)": record.get("frozen_bytes", 0) / GiB,
        "adapters, gradients, AdamW (GiB)": record.get("adapter_state_bytes", 0) / GiB,
        "fit start RSS (GiB)": fit.get("start_bytes", 0) / GiB or None,
        "fit end RSS (GiB)": fit.get("end_bytes", 0) / GiB or None,
    }


def table(results: dict[str, dict[str, dict]]) -> str:
    lines = []
    for scenario, variants in results.items():
        old, new = rows_of(variants["old"]), rows_of(variants["new"])
        lines += [
            f"\n### {scenario}\n",
            "| measure | old | new | new / old |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key, before in old.items():
            after = new[key]
            ratio = f"{after / before:.2f}" if before and after else ""
            lines.append(f"| {key} | {_format(before)} | {_format(after)} | {ratio} |")
        fit_old, fit_new = variants["old"].get("fit", {}), variants["new"].get("fit", {})
        if fit_old.get("max_batch_tokens"):
            tokens, targets = fit_old["max_batch_tokens"], fit_old["max_batch_targets"]
            lines.append(
                f"\nLargest training batch: {tokens} token slots, {targets} target tokens; its output-layer logits "
                f"in bfloat16: old (every position) {tokens * VOCAB * 2 / GiB:.2f} GiB, new (targets only) "
                f"{targets * VOCAB * 2 / GiB:.3f} GiB."
            )
        losses = list(zip(fit_old.get("losses", []), fit_new.get("losses", []), strict=False))
        if losses:
            worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in losses)
            lines.append(
                f"First {len(losses)} training losses: largest relative difference new vs old {worst:.2e}."
            )
    return "\n".join(lines)


def _format(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if value < 100 else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision of the old code, e.g. 70c8176")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default demo"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run (OMP_NUM_THREADS)")
    parser.add_argument("--study-steps", type=int, default=60, help="optimizer steps of study-fit")
    parser.add_argument(
        "--study-method", default="dora", help="method config of study-fit (dora: the largest)"
    )
    parser.add_argument("--only", choices=["old", "new"], help="run one side only (no ratios)")
    parser.add_argument("--out", type=Path, help="also write the raw records here (JSON)")
    parser.add_argument(
        "--new-args", nargs="*", default=[], help="extra options for the new code's command only"
    )
    args = parser.parse_args(argv)
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="run-cost-old-") as old_folder:
        old_source = unpack_revision(args.baseline, Path(old_folder))
        for scenario in args.scenario or ["demo"]:
            command = scenario_args(scenario, args.study_steps, args.study_method)
            results[scenario] = {}
            for side in ("old", "new"):
                if args.only and side != args.only:
                    continue
                source, configs = (old_source, old_source) if side == "old" else (None, ROOT)
                print(f"run_cost: {scenario} with the {side} code ...", flush=True)
                extra = args.new_args if side == "new" else []
                results[scenario][side] = run_once(source, configs, command, args.threads, extra)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    if not args.only:
        print(table(results))
    else:
        print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
