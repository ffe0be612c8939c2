"""`bash benchmarks/gpu_check.sh --dry`: the first-GPU check runs end to end on the CPU at tiny shapes, so the
script a lent GPU will run is itself tested (docs/gpu.md)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_dry_and_summarises_every_step(tmp_path: Path) -> None:
    environment = {**os.environ, "OUT": str(tmp_path / "check"), "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    rows = json.loads((tmp_path / "check" / "summary.json").read_text())
    steps = [row["step"] for row in rows]
    assert [step for step in steps if step.startswith("fit_")] == [
        "fit_lora",
        "fit_dora",
        "fit_hira",
        "fit_lora_gate",
        "fit_dora_gate",
        "fit_hira_gate",
        "fit_hira_gate_checkpointed",
    ]
    assert {"inputs", "layer_dtypes", "loss_positions", "train_step_vs_peft"} <= set(steps)
    assert all(row["outcome"] == "ok" for row in rows), rows
    assert "| fit_hira_gate | ok |" in (tmp_path / "check" / "summary.md").read_text()
