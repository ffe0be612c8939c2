"""A gloo process group over a file store, as the spawned test workers (DDP, FSDP) start it."""

from __future__ import annotations

import datetime

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
