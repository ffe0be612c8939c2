"""Choice scoring, old code against new in one run: rows per second, peak memory, identical predictions.

The old `score_candidates` is loaded from ``--baseline`` (a git revision; its
``gatera_lab/evaluation/choice_scoring.py`` imports only torch), the new one from the working tree. Both
score the same test batches of `make demo` (the quick overlay's 400 rows, batches of 16, SmolLM2-135M-Instruct
in bfloat16 under autocast with hira_gate injected at its identity start), batch by batch in alternating
order, each timed and its peak resident memory above the level before it measured (glibc's free heap handed
back first, so the peak counts reused pages). Predictions are compared row by row.

    python benchmarks/choice_scoring_speed.py --baseline 70c8176 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import memory  # noqa: E402
from gatera_lab.datamodules import CommonsenseDataModule  # noqa: E402
from gatera_lab.evaluation.choice_scoring import score_candidates  # noqa: E402
from gatera_lab.models.model_loading import load_causal_lm  # noqa: E402
from gatera_lab.registry import build_method  # noqa: E402
from gatera_lab.training.host_memory import bound_library_caches  # noqa: E402


def old_scorer(revision: str, folder: Path):
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:gatera_lab/evaluation/choice_scoring.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "old_choice_scoring.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_choice_scoring", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score_candidates


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git revision of the old code, e.g. 70c8176")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bound_library_caches()
    options = yaml.safe_load((ROOT / "configs" / "quick.yaml").read_text())["data"]["init_args"]
    data = CommonsenseDataModule(**options)
    data.setup("test")
    model = load_causal_lm("smollm2-135m-instruct", dtype=torch.bfloat16)
    build_method("hira_gate", r=32, alpha=64).apply(model)
    model.eval()
    seconds = {"old": 0.0, "new": 0.0}
    peaks = {"old": 0, "new": 0}
    rows = differing = 0
    with tempfile.TemporaryDirectory() as folder:
        scorers = {"old": old_scorer(args.baseline, Path(folder)), "new": score_candidates}
        for index, batch in enumerate(data.test_dataloader()):
            order = ("old", "new") if index % 2 == 0 else ("new", "old")
            predictions = {}
            for side in order:
                result = {}

                def step(side: str = side, result: dict = result, batch: dict = batch) -> None:
                    start = time.perf_counter()
                    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
                        result["scores"] = scorers[side](model, batch)
                    result["seconds"] = time.perf_counter() - start

                peak = memory.measure_peak(step, torch.device("cpu"))
                seconds[side] += result["seconds"]
                peaks[side] = max(peaks[side], peak or 0)
                predictions[side] = result["scores"].argmax(-1)
            rows += len(predictions["new"])
            differing += int((predictions["old"] != predictions["new"]).sum())
    print(
        f"threads {args.threads}, {rows} rows in {index + 1} batches (hira_gate at its start, bf16 autocast)"
    )
    print("| measure | old | new | new / old |\n| --- | ---: | ---: | ---: |")
    old_rate, new_rate = rows / seconds["old"], rows / seconds["new"]
    print(f"| rows / s | {old_rate:.2f} | {new_rate:.2f} | {new_rate / old_rate:.2f} |")
    old_peak, new_peak = peaks["old"] / 2**30, peaks["new"] / 2**30
    print(
        f"| largest batch peak above its start (GiB) | {old_peak:.2f} | {new_peak:.2f} | {new_peak / old_peak:.2f} |"
    )
    print(f"rows whose prediction differs: {differing} of {rows}")
    return {"speedup": new_rate / old_rate, "differing": differing}


if __name__ == "__main__":
    main()
