"""Hand freed host memory back to the operating system, so that a run's resident set follows what it uses.

On Linux with glibc, memory that PyTorch frees on the CPU goes back to ``malloc``'s heap, which keeps it.
Batches of varying shapes then fragment the heap, so a fit ends holding far more than it uses, and a test
after it starts from there (docs/benchmarks.md).
``malloc_trim(0)`` returns every free page of the heap to the system (the heap's address space stays, so
nothing is copied); the pages a later step touches are faulted in again, a cost paid by every step if
done after every step. So `trim_free_heap` trims only when the resident memory that
malloc does not hand out (the resident set less glibc's ``mallinfo2`` in-use bytes) grew by more than
``min_free_bytes`` since the last trim, which happens after the large steps that left the heap so, and `release_host_memory` trims at once (phase boundaries).
`HostMemoryHooks` calls both from a LightningModule's hooks. Elsewhere (macOS, musl, CUDA memory) both do
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os

DEFAULT_MIN_FREE_BYTES = 256 * 2**20
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "malloc_trim"):
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    return libc


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


def resident_free_bytes() -> int | None:
    """Resident memory that ``malloc`` does not hand out: the heap's free pages still resident, plus what is
    not malloc's at all (code, libraries; about constant). None where glibc's ``mallinfo2`` is missing."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    info = libc.mallinfo2()
    return _resident_bytes() - int(info.uordblks) - int(info.hblkhd)


_after_last_trim: list[int] = []  # resident_free_bytes() right after the last trim


def trim_free_heap(min_free_bytes: int = DEFAULT_MIN_FREE_BYTES) -> bool:
    """Trim when the resident free memory grew by more than ``min_free_bytes`` since the last trim; True if so."""
    free = resident_free_bytes()
    if free is None or (_after_last_trim and free <= _after_last_trim[-1] + min_free_bytes):
        return False
    _libc().malloc_trim(0)
    _after_last_trim[:] = [resident_free_bytes()]
    return True


# oneDNN (PyTorch's bfloat16 and float32 matmuls on x86 CPUs) caches up to 1,024 compiled primitives, one per
# operand shape, each holding its own buffers; a run whose batches all differ in length fills that cache
# with megabytes per batch. 32 keeps the speed (docs/benchmarks.md).
ONEDNN_PRIMITIVE_CACHE_CAPACITY = "32"


def bound_library_caches() -> None:
    """Cap oneDNN's primitive cache (unless ``ONEDNN_PRIMITIVE_CACHE_CAPACITY`` is set already).

    oneDNN reads the variable when it creates its first primitive, so call this before the first matmul.
    """
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_PRIMITIVE_CACHE_CAPACITY)


def release_host_memory() -> bool:
    """Collect garbage and return glibc's free heap pages to the system; False where that is not glibc."""
    gc.collect()
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    if hasattr(libc, "mallinfo2"):
        _after_last_trim[:] = [resident_free_bytes()]
    return True


class HostMemoryHooks:
    """LightningModule hooks (list it before the LightningModule base) that hand freed host memory back:
    at once around validation and before testing, and after a batch when the heap holds much free."""

    def on_validation_start(self) -> None:
        release_host_memory()

    def on_validation_end(self) -> None:
        release_host_memory()

    def on_test_start(self) -> None:
        release_host_memory()

    def on_train_batch_end(self, outputs: object, batch: object, batch_idx: int) -> None:
        trim_free_heap()

    def on_validation_batch_end(
        self, outputs: object, batch: object, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        trim_free_heap()

    def on_test_batch_end(
        self, outputs: object, batch: object, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        trim_free_heap()
