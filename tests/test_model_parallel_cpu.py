"""Sharded training through Lightning's ``ModelParallelStrategy`` (FSDP2), end to end on two CPU processes.

`gatera-lab fit --test_after_fit` of gated HiRA with the strategy (configs/fsdp.yaml's, at data-parallel size
2): `GateraModule.configure_model` shards the model (`gatera_lab.models.fsdp2_sharding`), the gate diagnostics
run their generation probe on the sharded model, validation and test score uneven shares of rows (5 and 4:
without gathered weights the process with fewer rows would leave the other waiting in a collective), and the
adapter-only checkpoint it writes loads on one process, whose test gives the same table.
"""

from __future__ import annotations

import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gatera_lab.cli import main
from tests.helpers.cli_process import run_cli_process
from tests.helpers.commonsense_folder import fit_then_test_args, write_commonsense_folder

STRATEGY = [
    "--trainer.strategy",
    "lightning.pytorch.strategies.ModelParallelStrategy",
    "--trainer.strategy.init_args.data_parallel_size",
    "2",
    "--trainer.strategy.init_args.tensor_parallel_size",
    "1",
    "--trainer.strategy.init_args.save_distributed_checkpoint",
    "false",
    "--trainer.accelerator",
    "cpu",
    "--trainer.devices",
    "2",
]


def test_fsdp2_fit_validates_tests_and_its_checkpoint_tests_on_one_process(
    tiny_model_dir, tmp_path: Path
) -> None:
    data_dir = write_commonsense_folder(tmp_path / "data")
    args = fit_then_test_args(tiny_model_dir, data_dir, tmp_path / "two")
    args[2] = "configs/hira_gate.yaml"
    args += ["--model.learning_rate", "0.01"]
    result = run_cli_process([*args, *STRATEGY])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "sharded with FSDP2: 2 decoder layers and the root over 2 processes" in output
    run = tmp_path / "two" / "lightning_logs" / "version_0"
    sharded = json.loads((run / "test_results.json").read_text())
    assert {task: total for task, (_, total) in sharded["counts"].items()} == {"boolq": 5, "piqa": 4}
    assert list((run / "gate_pictures").glob("gates_step*.png"))  # the generation probe on gathered weights
    scalars = set(EventAccumulator(str(run)).Reload().Tags()["scalars"])
    assert {"gradmask/all/grad_norm", "gates/all/response_mean"} <= scalars  # step 0's diagnostics, sharded
    (checkpoint,) = (run / "checkpoints").glob("*.ckpt")
    test_args = ["test", *args[1:]]
    test_args = [arg for arg in test_args if arg not in ("--test_after_fit", "true")]
    assert main([*test_args, "--ckpt_path", str(checkpoint)]) == 0
    single = json.loads((tmp_path / "two" / "lightning_logs" / "version_1" / "test_results.json").read_text())
    assert single["counts"] == sharded["counts"] and single["accuracy"] == sharded["accuracy"]
