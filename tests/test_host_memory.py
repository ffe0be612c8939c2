"""Freed host memory goes back to the system: after a trim the resident set follows what is in use."""

from __future__ import annotations

import pytest
import torch

from gatera_lab.training import host_memory


@pytest.fixture
def glibc() -> None:
    if host_memory.resident_free_bytes() is None:
        pytest.skip("not glibc with mallinfo2")


def test_a_fragmented_heap_is_trimmed_once_and_not_again_until_it_grows(glibc) -> None:
    host_memory.release_host_memory()
    blocks = [torch.ones(100_000) for _ in range(2_000)]  # 800 MB in 400 KB blocks on the heap
    del blocks[::2]  # every other block freed: holes the heap keeps resident
    before = host_memory.resident_free_bytes()
    assert host_memory.trim_free_heap()
    assert host_memory.resident_free_bytes() < before - 300 * 2**20  # most of the 400 MB of holes
    assert not host_memory.trim_free_heap()  # nothing new to give back: no second trim
    del blocks


def test_release_returns_whether_it_could() -> None:
    assert host_memory.release_host_memory() == (host_memory.resident_free_bytes() is not None)
