"""A disk cache of tokenised training examples, so that a repeated start skips building and tokenising the data.

`cached_examples(key, build, cache_dir, label)` returns ``build()``'s list of `TokenizedExample`, computed
once per ``key`` and then read from ``<cache_root>/tokenized/<sha256 of the key>.safetensors``. The caller
puts into ``key`` everything that decides the result: the data's identity (file hashes, source), the
tokenizer (`tokenizer_fingerprint`), ``max_length``, caps, seed and the prompt format. A changed key is a
new file; nothing is evicted.

The file holds no pickle, only arrays (safetensors), with N examples and T tokens in all:

- ``input_ids`` (T,) int32, every example's ids one after the other;
- ``offsets`` (N + 1,) int64, example ``i`` is ``input_ids[offsets[i]:offsets[i + 1]]``;
- ``response_mask`` (ceil(T / 8),) uint8, the response bits packed with `numpy.packbits`;
- ``cuts`` (N, 2) int32, ``prompt_cut`` and ``response_cut`` per example;

and, as safetensors metadata, the canonical JSON of the key, `FORMAT_VERSION`, and the SHA-256 of the array
bytes. A file whose key or version differs, whose digest does not match, or that cannot be read (truncated,
corrupt) is rebuilt and replaced; a cache that cannot be written only costs the next start the same build.

Writers are safe to run side by side (two sweep workers): the file appears in one atomic rename of a
finished temporary file (`gatera_lab.io.atomic_write.atomic_path`), and a lock (``<name>.lock``, `filelock`)
lets one worker build while the other waits and then reads its file.

Loading 148k examples of about 100 tokens (15M tokens, a 63 MB file) took 2.4-2.9 s on a busy shared 2-core
machine (0.5 s for 50k examples): the arrays become Python lists in a few bulk ``tolist`` calls, and the
garbage collector is paused while the 300k lists are made (without that pause it walks them again and
again: 5.2 s instead of 1.3 s in a measurement); the one pass it makes over them when it resumes is about
0.9 s of the total. The token ids share one int object per vocabulary entry (an object-array lookup), which
saves about 400 MB against one int object per token, as the tokenizer's own lists have.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from safetensors import safe_open
from safetensors.numpy import save_file
from transformers import PreTrainedTokenizerBase

from gatera_lab.datamodules.instruction_data import TokenizedExample
from gatera_lab.io.atomic_write import atomic_path, make_dirs
from gatera_lab.models.local_cache import cache_root

FORMAT_VERSION = 1  # of the file layout; bump it when the layout or the meaning of a field changes
CACHE_FOLDER = "tokenized"
SUFFIX = ".safetensors"
ARRAY_NAMES = ("input_ids", "offsets", "response_mask", "cuts")
TOKENIZER_FLAGS = ("add_bos_token", "add_eos_token", "add_prefix_space", "do_lower_case")


def cached_examples(
    key: dict[str, Any],
    build: Callable[[], list[TokenizedExample]],
    cache_dir: str | os.PathLike[str] | None,
    label: str,
    rows: int | None = None,
) -> list[TokenizedExample]:
    """``build()``, read from the cache when an entry for ``key`` exists, else built and cached.

    Args:
        key: a JSON-serialisable dict of everything that decides ``build()``'s result (its file name is the
            SHA-256 of its canonical JSON, and the file stores it to check on reading).
        build: makes the examples on a cache miss (e.g. builds the mixture and tokenises it).
        cache_dir: the cache root (see `gatera_lab.models.local_cache.cache_root`); None:
            ``GATERA_LAB_CACHE`` or ``~/.cache/gatera-lab``.
        label: names the data in the line printed to stderr (e.g. ``"training"``).
        rows: the number of rows ``build`` will tokenise, when known beforehand: the "tokenizing" line is then
            printed before the build starts; otherwise after it, with the count of examples built.

    Returns:
        The examples, equal to what ``build()`` returns.

    Raises:
        TypeError: ``key`` is not JSON-serialisable.
        ValueError: an example's ``response_mask`` and ``input_ids`` differ in length, or an id is negative or
            above 2**31 - 1. Errors of ``build`` pass through; an unusable cache file or a failed write
            (`OSError`) only prints a line.
    """
    key_json = canonical_json(key)
    path = cache_file(key, cache_dir)
    seen = _file_state(path)
    examples = _reuse(path, key_json, label)
    if examples is not None:
        return examples
    with _lock(path):
        if _file_state(path) != seen:  # another worker wrote it while this one waited for the lock
            examples = _reuse(path, key_json, label)
            if examples is not None:
                return examples
        if rows is not None:
            _say(f"tokenizing {rows} rows for {label}; cached at {path}")
        examples = build()
        if rows is None:
            _say(f"tokenizing {len(examples)} rows for {label}; cached at {path}")
        try:
            write_examples(path, examples, key_json)
        except OSError as error:
            _say(f"could not cache tokenized {label} at {path} ({error}); the next start tokenizes again")
    return examples


def cache_file(key: dict[str, Any], cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache_root>/tokenized/<SHA-256 of the canonical JSON of key>.safetensors`` (it may not exist)."""
    name = hashlib.sha256(canonical_json(key).encode()).hexdigest()
    return cache_root(cache_dir) / CACHE_FOLDER / f"{name}{SUFFIX}"


def canonical_json(key: dict[str, Any]) -> str:
    """``key`` as JSON with sorted keys and no spaces (ASCII only), so that equal keys give equal strings."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """``"sha256:<hex>"`` of what decides how ``tokenizer`` turns text into ids; about 40 ms for SmolLM2.

    A fast tokenizer is described by its whole backend (``backend_tokenizer.to_str()``: vocabulary, merges,
    normalizer, pre-tokenizer, post-processor, added tokens), a slow one by its vocabulary and vocabulary
    files; both add the class name, the special tokens, the added tokens and the flags of `TOKENIZER_FLAGS`.
    """
    digest = hashlib.sha256()

    def add(part: str | bytes) -> None:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)

    add(type(tokenizer).__name__)
    add(canonical_json({name: str(value) for name, value in tokenizer.special_tokens_map.items()}))
    add(canonical_json({str(index): repr(token) for index, token in tokenizer.added_tokens_decoder.items()}))
    flags = {name: getattr(tokenizer, name) for name in TOKENIZER_FLAGS if hasattr(tokenizer, name)}
    add(canonical_json({name: value for name, value in flags.items() if isinstance(value, (bool, int, str))}))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        add(backend.to_str())
    else:
        add(canonical_json(sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])))
        for attribute in sorted(getattr(tokenizer, "vocab_files_names", {})):
            file = getattr(tokenizer, attribute, None)
            if isinstance(file, (str, os.PathLike)) and Path(file).is_file():
                add(Path(file).read_bytes())
    return f"sha256:{digest.hexdigest()}"


def write_examples(path: Path, examples: list[TokenizedExample], key_json: str) -> None:
    """Write ``examples`` with their key to ``path``, atomically (see the module docstring for the layout)."""
    arrays = _to_arrays(examples)
    metadata = {"key": key_json, "format_version": str(FORMAT_VERSION), "sha256": _digest(arrays)}
    with atomic_path(path, suffix=".tmp") as temporary:
        save_file(arrays, str(temporary), metadata=metadata)


def read_examples(path: Path, key_json: str) -> list[TokenizedExample]:
    """The examples of the cache file ``path``; a ValueError says why it cannot be used for ``key_json``."""
    with safe_open(str(path), framework="np") as file:
        metadata = file.metadata() or {}
        if metadata.get("format_version") != str(FORMAT_VERSION):
            raise ValueError(f"format version {metadata.get('format_version')}, not {FORMAT_VERSION}")
        if metadata.get("key") != key_json:
            raise ValueError("it was written for another key")
        if sorted(file.keys()) != sorted(ARRAY_NAMES):
            raise ValueError(f"arrays {sorted(file.keys())}, not {sorted(ARRAY_NAMES)}")
        arrays = {name: file.get_tensor(name) for name in ARRAY_NAMES}
    if _digest(arrays) != metadata.get("sha256"):
        raise ValueError("its content does not match its SHA-256")
    return _from_arrays(arrays)


def _to_arrays(examples: list[TokenizedExample]) -> dict[str, np.ndarray]:
    lengths = np.fromiter((len(example.input_ids) for example in examples), np.int64, len(examples))  # (N,)
    for example in examples:
        if len(example.response_mask) != len(example.input_ids):
            raise ValueError("an example's response_mask and input_ids differ in length")
    offsets = np.zeros(len(examples) + 1, np.int64)  # (N + 1,)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    chain = itertools.chain.from_iterable
    input_ids = np.fromiter(chain(example.input_ids for example in examples), np.int64, total)  # (T,)
    if total and (input_ids.min() < 0 or input_ids.max() > np.iinfo(np.int32).max):
        raise ValueError("token ids must lie in [0, 2**31)")
    mask = np.fromiter(chain(example.response_mask for example in examples), np.bool_, total)  # (T,)
    cuts = np.array([(example.prompt_cut, example.response_cut) for example in examples], np.int32)
    return {
        "input_ids": input_ids.astype(np.int32),
        "offsets": offsets,
        "response_mask": np.packbits(mask),  # (ceil(T / 8),)
        "cuts": cuts.reshape(len(examples), 2),  # (N, 2)
    }


def _from_arrays(arrays: dict[str, np.ndarray]) -> list[TokenizedExample]:
    input_ids, offsets, packed, cuts = (arrays[name] for name in ARRAY_NAMES)
    total, count = input_ids.shape[0], offsets.shape[0] - 1
    if (
        input_ids.ndim != 1
        or offsets.ndim != 1
        or count < 0
        or offsets[0] != 0
        or offsets[-1] != total
        or np.any(np.diff(offsets) < 0)
        or packed.shape != ((total + 7) // 8,)
        or cuts.shape != (count, 2)
        or (total and input_ids.min() < 0)
    ):
        raise ValueError("its arrays do not fit together")
    mask = np.unpackbits(packed, count=total).astype(np.bool_).tolist()  # T bools
    vocabulary = np.arange(int(input_ids.max()) + 1 if total else 0, dtype=np.int64).astype(object)
    ids = vocabulary[input_ids].tolist()  # T ints, one object per distinct id
    starts, ends = offsets[:-1].tolist(), offsets[1:].tolist()
    prompt_cuts, response_cuts = cuts[:, 0].tolist(), cuts[:, 1].tolist()
    with _paused_gc():
        return [
            TokenizedExample(ids[start:end], mask[start:end], prompt_cut, response_cut)
            for start, end, prompt_cut, response_cut in zip(
                starts, ends, prompt_cuts, response_cuts, strict=True
            )
        ]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in ARRAY_NAMES:
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8))  # the bytes, without a copy
    return digest.hexdigest()


def _file_state(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime_ns) of ``path``, or None when it does not exist."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_size, status.st_mtime_ns


def _reuse(path: Path, key_json: str, label: str) -> list[TokenizedExample] | None:
    """The examples cached at ``path``, or None when there are none or they cannot be used (then said why)."""
    if not path.is_file():
        return None
    try:
        examples = read_examples(path, key_json)
    except Exception as error:  # a damaged file fails in many ways; each means rebuild
        _say(f"cached tokenized {label} at {path} is unusable ({error}); tokenizing again")
        return None
    _say(f"reusing tokenized {label} from {path}")
    return examples


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` (one builder per entry); where the file system cannot lock, go on without it."""
    make_dirs(path.parent)
    lock = FileLock(path.with_name(path.name + ".lock"))
    try:
        lock.acquire()
    except OSError:
        yield  # the atomic rename alone still keeps the file whole; two workers may then both build it
        return
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: making 300k lists would otherwise trigger many full passes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _say(message: str) -> None:
    print(f"gatera-lab: {message}", file=sys.stderr, flush=True)
