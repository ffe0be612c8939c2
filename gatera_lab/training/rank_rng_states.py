"""Every process's random-generator states in a checkpoint, so that a resumed run continues exactly.

Each process of a data-parallel run draws its own dropout masks (its generators are seeded per rank). A
checkpoint is written by process 0, so `capture_rank_rng_states` gathers every process's states first (a
collective: the checkpoint hooks run on every process) and `restore_rank_rng_states` gives process ``r`` the
states that process ``r`` saved. Layout: ``{"per_rank": [states of process 0, states of process 1, ...]}``,
each ``{"torch": CPU state, "cuda": [one state per visible GPU]}``. Checkpoints of the earlier layout (one
process's states, ``{"torch": ..., "cuda": ...}``) restore those on every process, as they were written.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.distributed as dist


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def local_rng_states() -> dict[str, Any]:
    """This process's CPU generator state and, where there are GPUs, every GPU's."""
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def capture_rank_rng_states() -> dict[str, Any]:
    """``{"per_rank": [...]}`` with every process's `local_rng_states`, in rank order (on every process)."""
    states = local_rng_states()
    if not _distributed():
        return {"per_rank": [states]}
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, states)
    return {"per_rank": gathered}


def _restore_local(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def restore_rank_rng_states(saved: dict[str, Any] | None) -> None:
    """Give this process the states its rank saved (nothing for a checkpoint without states)."""
    if not saved:
        return
    if "per_rank" not in saved:  # the earlier layout: one process's states
        _restore_local(saved)
        return
    rank = dist.get_rank() if _distributed() else 0
    per_rank = saved["per_rank"]
    if rank >= len(per_rank):
        warnings.warn(
            f"the checkpoint holds random states for {len(per_rank)} processes, this is process {rank}: "
            "it keeps its own (the run resumes, but not exactly as it would have continued)",
            stacklevel=2,
        )
        return
    _restore_local(per_rank[rank])
