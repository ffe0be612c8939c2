"""Shared fixtures: a tiny randomly initialised Llama built from a config (no download)."""

from __future__ import annotations

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
def instruction_file(tmp_path_factory: pytest.TempPathFactory):
    """24 short LLM-Adapters records."""
    from tests.helpers.tiny_checkpoint import write_instruction_file

    return write_instruction_file(tmp_path_factory.mktemp("data") / "train.json")
