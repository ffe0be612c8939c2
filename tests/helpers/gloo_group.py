"""A gloo process group over a file store, as the spawned test workers (DDP, FSDP) start, run and leave it."""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist


def init_gloo_group(rank: int, out_dir: str, world_size: int) -> None:
    """One torch thread, then join the group of ``world_size`` processes that share ``out_dir/store``."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"file://{out_dir}/store",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=120),
    )


@contextlib.contextmanager
def gloo_worker(rank: int, out_dir: str, world_size: int) -> Iterator[None]:
    """The body runs in the gloo group (`init_gloo_group`); then a barrier, and the process leaves without
    running destructors: tearing down a gloo group that DDP reducers still reference can deadlock (the
    group's worker thread waits for the GIL that the destructor holds). Outputs are on disk by then. On an
    error the group is destroyed and the error raised."""
    init_gloo_group(rank, out_dir, world_size)
    try:
        yield
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    os._exit(0)


def spawn_workers(
    worker: Callable[[int, str], None], out_dir: Path, what: str, world_size: int, timeout_s: float = 300
) -> None:
    """``worker(rank, str(out_dir))`` in ``world_size`` spawned processes; a failed process raises, and the
    test fails if they have not finished within ``timeout_s``."""
    context = torch.multiprocessing.spawn(worker, args=(str(out_dir),), nprocs=world_size, join=False)
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {what} processes did not finish within {timeout_s} s")


def padded_batch(seed: int) -> dict[str, torch.Tensor]:
    """4 right-padded sequences of 12 tokens; rows 0-1 hold 5 response targets and 20 real tokens, rows
    2-3 hold 15 and 22, so each of two ranks has its own token counts."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 128, (4, 12), generator=generator)  # (4, 12)
    positions = torch.arange(12)  # (12,)
    attention_mask = (positions < torch.tensor([[12], [8], [12], [10]])).long()  # (4, 12)
    response_mask = (positions >= torch.tensor([[9], [6], [3], [4]])).long() * attention_mask  # (4, 12)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}


def shard(batch: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    """Rank ``rank``'s contiguous share of ``batch``'s rows."""
    rows = batch["input_ids"].shape[0] // world_size
    return {key: value[rank * rows : (rank + 1) * rows] for key, value in batch.items()}
