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
