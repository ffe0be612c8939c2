"""Data parallelism on CPU (gloo): gradients, metric sums and evaluation tables equal one process's.

- The evaluation sampler partitions the rows (no padding, no repeats).
- Two processes spawned once (torch.distributed, gloo) for the module-level checks: DDP's averaged adapter
  gradients equal one process's on the whole global batch, for a gated and an ungated method, with ranks
  holding different numbers of response and real tokens; `TaskAccuracy.counts` sums over processes.
- One `gatera-lab fit --test_after_fit` run with ``--trainer.strategy ddp --trainer.devices 2`` (the same
  pattern as tests/test_cli.py) against the same run in one process: validation accuracies and the test table
  (accuracy and counts per task) are equal, with row counts that do not split evenly over two processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from gatera_lab import build_method
from gatera_lab.cli import main
from gatera_lab.datamodules.commonsense_tasks import CommonsenseExample
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import TaskAccuracy
from gatera_lab.evaluation.distributed_eval_sampler import DistributedEvalSampler
from gatera_lab.training.module import GateraModule
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.gloo_group import init_gloo_group, padded_batch, shard

WORLD_SIZE = 2
SPAWN_TIMEOUT_SECONDS = 300
METHODS = {
    "lora": {},
    "hira_gate": {"entropy_weight": 0.3, "gate_weight_init_std": 0.5},
}


# ---------------------------------------------------------------- the evaluation sampler
@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("rows", [3, 4, 7])
def test_eval_sampler_partitions_the_rows(rows: int, world_size: int) -> None:
    shares = [list(DistributedEvalSampler(range(rows), world_size, rank)) for rank in range(world_size)]
    assert sorted(index for share in shares for index in share) == list(range(rows))  # each row once
    assert [len(share) for share in shares] == [
        len(DistributedEvalSampler(range(rows), world_size, rank)) for rank in range(world_size)
    ]
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert shares[0] == list(range(0, rows, world_size))


def test_eval_sampler_outside_a_process_group_takes_every_row() -> None:
    assert list(DistributedEvalSampler(range(5))) == [0, 1, 2, 3, 4]


def test_eval_sampler_refuses_more_processes_than_rows() -> None:
    with pytest.raises(ConfigError, match="has 1 rows, fewer than the 2 processes.*'trainer.devices'"):
        DistributedEvalSampler(range(1), num_replicas=2, rank=0)


# ---------------------------------------------------------------- two spawned processes
def global_batch() -> dict[str, Tensor]:
    return padded_batch(seed=7)


def make_module(method: str) -> GateraModule:
    """A tiny Llama with ``method`` injected and random adapter values (the same on every process)."""
    module = GateraModule(method=build_method(method, r=4, alpha=8, **METHODS[method]), model="tiny")
    module.attach_model(make_tiny_llama(seed=0))
    randomize_adapters(module.model, seed=1, std=0.2)
    return module


def adapter_gradients(module: GateraModule) -> dict[str, Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.requires_grad}


class TrainingObjective(torch.nn.Module):
    """`GateraModule`'s training loss as a forward, so DDP wraps it as Lightning wraps ``training_step``."""

    def __init__(self, module: GateraModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.module.training_objective(batch, self.module.compute_losses(batch))


def two_process_worker(rank: int, out_dir: str) -> None:
    """One of two gloo processes: DDP gradients of each method on its shard, and summed metric counts."""
    init_gloo_group(rank, out_dir, WORLD_SIZE)
    try:
        for method in METHODS:
            module = make_module(method)
            objective = DistributedDataParallel(TrainingObjective(module))
            objective(shard(global_batch(), rank, WORLD_SIZE)).backward()
            torch.save(adapter_gradients(module), Path(out_dir) / f"{method}_rank{rank}.pt")
        everywhere = TaskAccuracy(["a", "b", "c"])  # task c: no row on any process
        if rank == 0:
            everywhere.update(torch.tensor([0, 0, 1]), torch.tensor([True, False, True]))
        else:
            everywhere.update(torch.tensor([1, 1]), torch.tensor([True, False]))
        rank_zero_only = TaskAccuracy(["a", "b"])  # rank 1 scores no row
        if rank == 0:
            rank_zero_only.update(torch.tensor([0, 1]), torch.tensor([True, False]))
        results = {
            "counts": everywhere.counts(),
            "accuracy": {task: float(value) for task, value in everywhere.compute().items()},
            "rank_zero_only_counts": rank_zero_only.counts(),
        }
        (Path(out_dir) / f"metric_rank{rank}.json").write_text(json.dumps(results))
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    # Leave without running destructors: tearing down a gloo group that DDP reducers still reference can
    # deadlock (the group's worker thread waits for the GIL that the destructor holds). Outputs are on disk.
    os._exit(0)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs of `two_process_worker` on ranks 0 and 1 (spawned once for the tests below)."""
    out_dir = tmp_path_factory.mktemp("two_processes")
    context = torch.multiprocessing.spawn(
        two_process_worker, args=(str(out_dir),), nprocs=WORLD_SIZE, join=False
    )
    deadline = time.monotonic() + SPAWN_TIMEOUT_SECONDS
    while not context.join(timeout=5):  # raises if a process failed
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the two DDP processes did not finish within {SPAWN_TIMEOUT_SECONDS} s")
    return out_dir


@pytest.mark.parametrize("method", list(METHODS))
def test_ddp_gradients_equal_one_process_on_the_global_batch(two_processes: Path, method: str) -> None:
    batch = global_batch()
    halves = [shard(batch, rank, WORLD_SIZE) for rank in range(WORLD_SIZE)]
    assert halves[0]["response_mask"][:, 1:].sum() != halves[1]["response_mask"][:, 1:].sum()
    assert halves[0]["attention_mask"].sum() != halves[1]["attention_mask"].sum()
    module = make_module(method)
    module.compute_losses(batch)["loss"].backward()
    expected = adapter_gradients(module)
    assert all(gradient.abs().sum() > 0 for gradient in expected.values())
    for rank in range(WORLD_SIZE):
        got = torch.load(two_processes / f"{method}_rank{rank}.pt")
        assert got.keys() == expected.keys()
        for name, gradient in expected.items():
            torch.testing.assert_close(got[name], gradient, rtol=1e-4, atol=1e-6, msg=f"rank {rank}: {name}")
    # Control: averaging each half's own token mean (what DDP gives without the token shares) differs.
    naive = {name: torch.zeros_like(gradient) for name, gradient in expected.items()}
    for half in halves:
        module.zero_grad()
        (module.compute_losses(half)["loss"] / WORLD_SIZE).backward()
        naive = {name: naive[name] + gradient for name, gradient in adapter_gradients(module).items()}
    assert any(not torch.allclose(naive[name], expected[name], rtol=1e-3, atol=1e-5) for name in expected)


def test_task_accuracy_counts_are_summed_over_processes(two_processes: Path) -> None:
    for rank in range(WORLD_SIZE):
        results = json.loads((two_processes / f"metric_rank{rank}.json").read_text())
        assert results["counts"] == {"a": [1, 2], "b": [2, 3]}
        assert results["accuracy"] == pytest.approx({"a": 0.5, "b": 2 / 3, "avg": (0.5 + 2 / 3) / 2})
        assert results["rank_zero_only_counts"] == {"a": [1, 1], "b": [0, 1]}


# ---------------------------------------------------------------- the CLI under DDP
def write_commonsense_folder(folder: Path) -> Path:
    """An LLM-Adapters folder: 12 training records, 5 BoolQ and 4 PIQA test rows (9: odd, so padding shows)."""

    def example(task: str, index: int) -> CommonsenseExample:
        if task == "boolq":
            return CommonsenseExample("boolq", f"is {index} even", ("true", "false"), index % 2)
        return CommonsenseExample("piqa", f"open jar {index}", (f"twist {index}", "push"), (index // 2) % 2)

    def records(task: str, rows: range) -> list[dict]:
        return [{k: v for k, v in example(task, i).to_record().items() if k != "task"} for i in rows]

    folder.mkdir(parents=True)
    (folder / "commonsense_170k.json").write_text(
        json.dumps(records("boolq", range(6)) + records("piqa", range(6)))
    )
    for task, rows in (("boolq", range(10, 15)), ("piqa", range(10, 14))):
        (folder / task).mkdir()
        (folder / task / "test.json").write_text(json.dumps(records(task, rows)))
    return folder


def fit_then_test_args(model_dir: Path, data_dir: Path, root: Path) -> list[str]:
    """One training step at learning rate 0 (the adapter stays as initialised), validation, then test."""
    return [
        "fit",
        "--config",
        "configs/lora.yaml",
        "--model.model",
        str(model_dir),
        "--model.method.init_args.r",
        "4",
        "--model.learning_rate",
        "0",
        "--model.warmup_steps",
        "0",
        "--data.source",
        "llm_adapters",
        "--data.data_dir",
        str(data_dir),
        "--data.tasks",
        "[boolq, piqa]",
        "--data.val_size",
        "5",
        "--data.batch_size",
        "2",
        "--data.eval_batch_size",
        "2",
        "--data.max_length",
        "96",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "1",
        "--trainer.accumulate_grad_batches",
        "1",
        "--trainer.num_sanity_val_steps",
        "0",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.default_root_dir",
        str(root),
        "--test_after_fit",
        "true",
    ]


def validation_accuracies(run_dir: Path) -> dict[str, float]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"] if tag.startswith("val/acc")
    }


def test_ddp_validation_and_test_tables_equal_one_process(tiny_model_dir, tmp_path: Path) -> None:
    data_dir = write_commonsense_folder(tmp_path / "data")
    assert main(fit_then_test_args(tiny_model_dir, data_dir, tmp_path / "one")) == 0
    command = [
        sys.executable,
        "-m",
        "gatera_lab.cli",
        *fit_then_test_args(tiny_model_dir, data_dir, tmp_path / "two"),
        "--trainer.strategy",
        "ddp",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    one, two = (tmp_path / name / "lightning_logs" / "version_0" for name in ("one", "two"))
    tables = [json.loads((run / "test_results.json").read_text()) for run in (one, two)]
    assert {task: total for task, (_, total) in tables[0]["counts"].items()} == {"boolq": 5, "piqa": 4}
    assert tables[1]["counts"] == tables[0]["counts"]
    assert tables[1]["accuracy"] == tables[0]["accuracy"]
    accuracies = validation_accuracies(one)
    assert {"val/acc", "val/acc_boolq", "val/acc_piqa"} <= set(accuracies)
    assert validation_accuracies(two) == accuracies
