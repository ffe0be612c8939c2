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
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from gatera_lab import build_method
from gatera_lab.cli import main
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation import TaskAccuracy
from gatera_lab.evaluation.distributed_eval_sampler import DistributedEvalSampler
from gatera_lab.training.module import GateraModule
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.cli_process import run_ddp_on_two_cpus
from tests.helpers.commonsense_folder import fit_then_test_args, write_commonsense_folder
from tests.helpers.gloo_group import gloo_worker, padded_batch, shard, spawn_workers

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
    with gloo_worker(rank, out_dir, WORLD_SIZE):
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


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs of `two_process_worker` on ranks 0 and 1 (spawned once for the tests below)."""
    out_dir = tmp_path_factory.mktemp("two_processes")
    spawn_workers(two_process_worker, out_dir, "two DDP", WORLD_SIZE, SPAWN_TIMEOUT_SECONDS)
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
def validation_accuracies(run_dir: Path) -> dict[str, float]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {
        tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"] if tag.startswith("val/acc")
    }


def test_ddp_validation_and_test_tables_equal_one_process(tiny_model_dir, tmp_path: Path) -> None:
    data_dir = write_commonsense_folder(tmp_path / "data")
    assert main(fit_then_test_args(tiny_model_dir, data_dir, tmp_path / "one")) == 0
    run_ddp_on_two_cpus(fit_then_test_args(tiny_model_dir, data_dir, tmp_path / "two"))
    one, two = (tmp_path / name / "lightning_logs" / "version_0" for name in ("one", "two"))
    tables = [json.loads((run / "test_results.json").read_text()) for run in (one, two)]
    assert {task: total for task, (_, total) in tables[0]["counts"].items()} == {"boolq": 5, "piqa": 4}
    assert tables[1]["counts"] == tables[0]["counts"]
    assert tables[1]["accuracy"] == tables[0]["accuracy"]
    accuracies = validation_accuracies(one)
    assert {"val/acc", "val/acc_boolq", "val/acc_piqa"} <= set(accuracies)
    assert validation_accuracies(two) == accuracies
