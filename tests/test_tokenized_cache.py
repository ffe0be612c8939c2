"""`gatera_lab.datamodules.tokenized_cache`: round trip, keys, damaged files, concurrent builders, fingerprints."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gatera_lab.datamodules import tokenized_cache
from gatera_lab.datamodules.instruction_data import TokenizedExample, tokenize_instruction
from gatera_lab.datamodules.tokenized_cache import (
    CACHE_FOLDER,
    cache_file,
    cached_examples,
    canonical_json,
    tokenizer_fingerprint,
)
from tests.helpers.char_tokenizer import make_char_tokenizer

RECORDS = [
    {"instruction": "Pick the answer.", "input": "2 + 2 = ?", "output": "the answer is 4"},
    {"instruction": "Is the sky green?", "output": "false"},
    {"instruction": "A long question " * 8, "output": "a long answer " * 6},
]


class CountingBuild:
    """A ``build`` callable that records how often it ran."""

    def __init__(self, examples: list[TokenizedExample], delay: float = 0.0) -> None:
        self.examples, self.delay, self.calls = examples, delay, 0

    def __call__(self) -> list[TokenizedExample]:
        self.calls += 1
        time.sleep(self.delay)
        return list(self.examples)


@pytest.fixture
def examples() -> list[TokenizedExample]:
    """Tokenised records (the last one cut on both sides) and hand-made edge cases."""
    tokenizer = make_char_tokenizer()
    tokenized = [tokenize_instruction(record, tokenizer, max_length=64) for record in RECORDS]
    tokenized.append(tokenize_instruction(RECORDS[2], tokenizer, max_length=20))  # longer response than fits
    assert tokenized[-1].prompt_cut > 0 and tokenized[-1].response_cut > 0
    return [
        *tokenized,
        TokenizedExample(input_ids=[], response_mask=[]),
        TokenizedExample(input_ids=[49151, 0, 7], response_mask=[True, False, True], prompt_cut=3),
    ]


def cache_files(root: Path) -> list[Path]:
    return sorted((root / CACHE_FOLDER).glob("*.safetensors"))


def test_round_trip_returns_equal_examples_without_building(examples, tmp_path, capsys):
    key = {"source": "records", "max_length": 64}
    build = CountingBuild(examples)
    assert cached_examples(key, build, tmp_path, "training") == examples
    path = cache_file(key, tmp_path)
    assert cache_files(tmp_path) == [path]
    assert f"tokenizing {len(examples)} rows for training; cached at {path}" in capsys.readouterr().err

    again = cached_examples(dict(reversed(key.items())), build, tmp_path, "training")  # same key, other order
    assert again == examples and build.calls == 1
    assert all(type(token) is int for example in again for token in example.input_ids)
    assert all(type(bit) is bool for example in again for bit in example.response_mask)
    assert capsys.readouterr().err.strip() == f"gatera-lab: reusing tokenized training from {path}"


def test_an_empty_list_round_trips(tmp_path):
    build = CountingBuild([])
    assert cached_examples({"rows": 0}, build, tmp_path, "empty") == []
    assert cached_examples({"rows": 0}, build, tmp_path, "empty") == [] and build.calls == 1


def test_rows_given_prints_the_line_before_building(examples, tmp_path, capsys):
    def build() -> list[TokenizedExample]:
        assert "tokenizing 7 rows for validation" in capsys.readouterr().err
        return examples

    assert cached_examples({"split": "validation"}, build, tmp_path, "validation", rows=7) == examples


def test_a_changed_key_builds_a_second_entry(examples, tmp_path):
    build = CountingBuild(examples)
    cached_examples({"max_length": 64}, build, tmp_path, "training")
    cached_examples({"max_length": 128}, build, tmp_path, "training")
    assert build.calls == 2 and len(cache_files(tmp_path)) == 2
    cached_examples({"max_length": 128}, build, tmp_path, "training")
    assert build.calls == 2


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def garbage(path: Path) -> None:
    path.write_bytes(b"not a safetensors file")


@pytest.mark.parametrize("damage", [truncate, flip_last_byte, garbage, lambda path: path.write_bytes(b"")])
def test_a_damaged_file_is_rebuilt_and_replaced(examples, tmp_path, capsys, damage):
    key = {"source": "records"}
    build = CountingBuild(examples)
    cached_examples(key, build, tmp_path, "training")
    (path,) = cache_files(tmp_path)
    damage(path)
    capsys.readouterr()

    assert cached_examples(key, build, tmp_path, "training") == examples and build.calls == 2
    assert f"cached tokenized training at {path} is unusable" in capsys.readouterr().err
    assert cached_examples(key, build, tmp_path, "training") == examples and build.calls == 2  # replaced
    assert cache_files(tmp_path) == [path]


def test_a_file_written_for_another_key_is_not_used(examples, tmp_path, capsys):
    build = CountingBuild(examples)
    cached_examples({"max_length": 64}, build, tmp_path, "training")
    other = CountingBuild(examples[:2])
    cached_examples({"max_length": 32}, other, tmp_path, "training")
    first, second = cache_file({"max_length": 64}, tmp_path), cache_file({"max_length": 32}, tmp_path)
    second.write_bytes(first.read_bytes())  # a file under the wrong name (or a hash collision)
    capsys.readouterr()
    assert len(cached_examples({"max_length": 32}, other, tmp_path, "training")) == 2
    assert other.calls == 2 and "another key" in capsys.readouterr().err


def test_concurrent_builders_build_once(examples, tmp_path):
    build = CountingBuild(examples, delay=0.3)
    results: list[list[TokenizedExample]] = []
    workers = [
        threading.Thread(
            target=lambda: results.append(cached_examples({"k": 1}, build, tmp_path, "training"))
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert build.calls == 1 and results == [examples, examples]
    assert not list((tmp_path / CACHE_FOLDER).glob(".*.tmp"))


def test_a_failed_write_still_returns_the_examples(examples, tmp_path, monkeypatch, capsys):
    def full_disk(*args, **kwargs) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tokenized_cache, "save_file", full_disk)
    assert cached_examples({"k": 1}, CountingBuild(examples), tmp_path, "training") == examples
    assert "could not cache tokenized training" in capsys.readouterr().err
    assert not cache_files(tmp_path) and not list((tmp_path / CACHE_FOLDER).glob(".*.tmp"))


def test_canonical_json_ignores_key_order_and_rejects_non_json():
    assert (
        canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'
    )
    with pytest.raises(TypeError):
        canonical_json({"path": Path("x")})


def test_tokenizer_fingerprint_follows_the_vocabulary_and_special_tokens():
    reference = tokenizer_fingerprint(make_char_tokenizer())
    assert reference.startswith("sha256:") and tokenizer_fingerprint(make_char_tokenizer()) == reference

    added = make_char_tokenizer()
    added.add_tokens(["<extra>"])
    assert tokenizer_fingerprint(added) != reference

    other_eos = make_char_tokenizer()
    other_eos.eos_token = "<s>"
    assert tokenizer_fingerprint(other_eos) != reference


def test_loading_is_faster_than_building_50k_examples(tmp_path):
    """Prints the timings (no ratio asserted: a shared machine's clock is noisy)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(40, 160, 50_000).tolist()

    def build() -> list[TokenizedExample]:
        return [
            TokenizedExample(
                rng.integers(0, 49152, length).tolist(),
                [False] * (length // 2) + [True] * (length - length // 2),
            )
            for length in lengths
        ]

    start = time.perf_counter()
    built = cached_examples({"synthetic": 50_000}, build, tmp_path, "synthetic")
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    loaded = cached_examples({"synthetic": 50_000}, build, tmp_path, "synthetic")
    load_seconds = time.perf_counter() - start
    assert loaded == built
    print(
        f"50k examples, {sum(lengths)} tokens: build and write {build_seconds:.2f} s, load {load_seconds:.2f} s"
    )
