"""What a training step costs in memory, measured three honest ways.

- ``saved_bytes``: the distinct tensor storages autograd saves for backward during the forward, model
  parameters and buffers excluded (counted with `torch.autograd.graph.saved_tensors_hooks`; a storage
  saved by several ops counts once). Deterministic, and the same on every device.
- ``peak_bytes``: the peak memory of the step above what was allocated just before it, so it holds the
  activations, temporaries, gradients and optimizer temporaries. On CUDA ``torch.cuda.max_memory_allocated``;
  on CPU the peak resident set size (Linux ``VmHWM`` after resetting it through ``/proc/self/clear_refs``)
  with glibc told to serve every allocation above 64 KiB by ``mmap`` (freed tensors leave the resident set
  at once) and ``malloc_trim(0)`` called first (free heap pages are handed back, so reusing them counts);
  otherwise freed memory stays resident and the delta understates.
- ``state_bytes``: the trainable parameters plus the AdamW state (``exp_avg``, ``exp_avg_sq``), which stay
  allocated between steps; the frozen base weights are the same for all contenders and left out.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import nn

CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return None if name is None else ctypes.CDLL(name)
    except OSError:
        return None


def configure_cpu_allocator(mmap_threshold: int = 1 << 16) -> bool:
    """Make glibc return freed blocks above ``mmap_threshold`` bytes to the OS at once; False if not glibc."""
    libc = _libc()
    try:
        m_trim_threshold, m_mmap_threshold = -1, -3
        return (
            libc is not None
            and bool(libc.mallopt(m_mmap_threshold, mmap_threshold))
            and bool(libc.mallopt(m_trim_threshold, mmap_threshold))
        )
    except AttributeError:
        return False


def release_free_heap() -> None:
    """Hand free heap pages back to the OS (glibc ``malloc_trim``), so that reusing them shows in the RSS."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def cpu_peak_supported() -> bool:
    return CLEAR_REFS.exists() and _STATUS.exists()


def status_bytes(key: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise RuntimeError(f"{_STATUS} has no {key} line")


def measure_peak(step: Callable[[], None], device: torch.device) -> int | None:
    """Peak bytes above the pre-step level while ``step()`` runs; ``None`` where it cannot be measured."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu" or not cpu_peak_supported():
        step()
        return None
    release_free_heap()
    CLEAR_REFS.write_text("5")  # resets VmHWM to the current VmRSS
    before = status_bytes("VmRSS")
    step()
    return status_bytes("VmHWM") - before


@contextlib.contextmanager
def count_saved_bytes(model: nn.Module) -> Iterator[dict[str, int]]:
    """Within the block, sum the bytes of distinct storages saved for backward (parameters excluded)."""
    excluded = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}
    result = {"bytes": 0, "tensors": 0}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        pointer = storage.data_ptr()
        result["tensors"] += 1
        if pointer not in excluded and pointer not in seen and storage.nbytes() > 0:
            seen[pointer] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield result
    result["bytes"] = sum(seen.values())


def state_bytes(trainable: list[nn.Parameter], optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes of the trainable parameters and of every tensor in the optimizer state."""
    total = sum(p.numel() * p.element_size() for p in trainable)
    if optimizer is not None:
        for state in optimizer.state.values():
            total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total
