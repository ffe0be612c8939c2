"""Add the gates' token / module variance split to gated run records written before records kept it.

A gated fit's `FinalGateProbe` now also writes ``gates.token_variance`` (`gatera_lab.diagnostics.token_variance`:
how much of the gates' variance lies across tokens within a module rather than across modules). Records of
earlier fits lack it. For each such record this script loads the fit's checkpoint (``fit.log_dir``/checkpoints,
still on the machine that ran it) as `gatera-lab gates` does, rebuilds the fit's datamodule from the fit's
``config.yaml`` (its ``data`` section, tokenizer from ``model.model``), runs the probe's statistics on the same
held-out batches and adds ``token_variance`` to the record atomically, under the run's sweep claim so a working
``gatera-lab sweep`` is never raced. Nothing else in a record changes; as a check, the re-measured mean gate is
printed beside the recorded one (they differ only by the checkpoint's reload precision).

    python scripts/backfill_token_variance.py --records results/study/records --runs results/study/runs
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import torch
import yaml

from gatera_lab.diagnostics.final_gate_probe import FinalGateProbe, held_out_batches
from gatera_lab.experiments.record_backfill import backfill_records, print_outcome
from gatera_lab.export.checkpoint_adapter import load_for_inference


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, required=True, help="the sweep's records folder")
    parser.add_argument("--runs", type=Path, required=True, help="the sweep's run folders (for the claims)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    return parser.parse_args(argv)


def fit_datamodule(config_file: Path) -> Any:
    """The fit's datamodule, set up for ``fit``, from its ``config.yaml`` (``data`` and ``model.model``)."""
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or "class_path" not in data:
        raise ValueError(f"{config_file}: no 'data.class_path' to rebuild the fit's datamodule from")
    module_name, _, class_name = data["class_path"].rpartition(".")
    init_args = {**(data.get("init_args") or {}), "tokenizer": config["model"]["model"]}
    datamodule = getattr(importlib.import_module(module_name), class_name)(**init_args)
    datamodule.setup("fit")
    return datamodule


def measure(log_dir: Path, probe: FinalGateProbe) -> dict[str, Any]:
    """The probe's statistics of the checkpoint in ``log_dir`` on its fit's held-out batches."""
    checkpoints = sorted((log_dir / "checkpoints").glob("*.ckpt"))
    if len(checkpoints) != 1:
        raise FileNotFoundError(
            f"{log_dir / 'checkpoints'}: expected one checkpoint, found {len(checkpoints)}"
        )
    model = load_for_inference(checkpoints[0], gated=True).model
    datamodule = fit_datamodule(log_dir / "config.yaml")
    with torch.no_grad():
        return probe.statistics(model, held_out_batches(datamodule, probe.max_batches), torch.device("cpu"))


def backfill(records_dir: Path, runs_dir: Path) -> dict[str, list[str]]:
    """Names of the records ``added`` the split, ``held`` by a worker, ``missing`` their checkpoint."""
    probe = FinalGateProbe()

    def fill(record: dict) -> bool:
        log_dir = Path(record["fit"]["log_dir"])
        if not (log_dir / "checkpoints").is_dir():
            return False
        statistics = measure(log_dir, probe)
        record["gates"]["token_variance"] = statistics["token_variance"]
        recorded, now = record["gates"]["groups"]["all"]["mean"], statistics["groups"]["all"]["mean"]
        split = statistics["token_variance"]
        print(
            f"{record['name']}: token share {split['token_share']:.3f}, flips {split['flips']:.4f} "
            f"(mean gate recorded {recorded:.4f}, re-measured {now:.4f})",
            flush=True,
        )
        return True

    def wanted(record: dict) -> bool:
        return bool(record.get("gates")) and "token_variance" not in record["gates"]

    return backfill_records(records_dir, runs_dir, wanted, fill)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    outcome = backfill(args.records, args.runs)
    print_outcome(
        outcome, {"held": "held by a worker, left", "missing": "checkpoint gone, left"}, args.records
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
