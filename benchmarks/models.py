"""Randomly initialised Llama-shaped models for benchmarks (no download).

Every contender of a run shares one set of frozen base weights: `share_frozen_copy` deep-copies the module
tree but keeps the parameter tensors, so ten contenders cost the memory of one base model.
"""

from __future__ import annotations

import argparse
import copy

import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS: dict[str, dict] = {
    # HuggingFaceTB/SmolLM2-135M: the model this project fine-tunes on CPU.
    "smollm2-135m": dict(
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    ),
    # A few-thousand-parameter Llama for dry runs of the GPU check on a CPU (benchmarks/gpu_check.sh --dry).
    "tiny": dict(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    ),
    # meta-llama/Llama-3.2-1B (rope scaling left out: it does not change the cost of a step).
    "llama-3.2-1b": dict(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=64,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
    ),
}

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def model_config(preset: str, layers: int | None = None) -> LlamaConfig:
    """The `LlamaConfig` of ``preset``, optionally with fewer (or more) decoder layers."""
    if preset not in PRESETS:
        raise ValueError(f"option --preset: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    fields = dict(PRESETS[preset])
    if layers is not None:
        if layers <= 0:
            raise ValueError(f"option --layers must be positive, got {layers}")
        fields["num_hidden_layers"] = layers
    return LlamaConfig(**fields)


def build_base_model(
    config: LlamaConfig, dtype: torch.dtype, device: torch.device, seed: int
) -> LlamaForCausalLM:
    """A frozen `LlamaForCausalLM` with random weights, deterministic for ``seed``."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    model.to(dtype=dtype)
    model.requires_grad_(False)
    return model


def share_frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model``'s modules whose parameters are the very same tensors (not copies)."""
    memo = {id(parameter): parameter for parameter in model.parameters()}
    return copy.deepcopy(model, memo)


def random_batch(vocab_size: int, batch: int, seq_len: int, device: torch.device, seed: int) -> torch.Tensor:
    """Token ids (batch, seq_len), uniformly random, deterministic for ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, seq_len), generator=generator).to(device)


def add_single_model_options(parser: argparse.ArgumentParser) -> None:
    """``--preset``, ``--layers``, ``--repeats`` and ``--threads``: the options of a one-model CPU timing."""
    parser.add_argument("--preset", default="smollm2-135m", choices=list(PRESETS))
    parser.add_argument(
        "--layers", type=int, default=None, help="fewer decoder layers (default: the preset's)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")


def parse_single_model_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv`` and apply ``--threads``."""
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args
