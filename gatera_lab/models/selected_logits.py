"""The output layer at a few positions, and the log-probabilities of target tokens in bounded chunks.

A causal LM's forward ends with the output layer applied at every position, ``logits = W_out h`` of shape
(B, T, V). Training on response tokens and scoring answer choices need it at a few dozen positions of
thousands, and at V = 49,152 (SmolLM2) or 128,256 (Llama 3) those logits, their float32 log-softmax and its
gradient are the largest tensors of a step. `logits_at` hands the output layer only the hidden states at
the selected positions, through a forward pre-hook on the model's own output module, so the model's
forward (and whatever it does after that layer, such as logit soft-capping) runs as usual on (1, S, d)
instead of (B, T, d). `target_log_probs` then computes

    log p(y_s | h_s) = log softmax(logits_s)[y_s],     s = 1..S,

in float32, ``chunk_size`` positions at a time; under autograd each chunk is recomputed in backward
(`torch.utils.checkpoint`), so no float32 (S, V) tensor is ever alive at once, only (chunk_size, V).
Each position's log-softmax is computed row by row as before, so the values equal a log-softmax over all
positions followed by a gather.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from gatera_lab.errors import ConfigError

# Positions per float32 log-softmax chunk: 256 x 49,152 x 4 bytes = 48 MiB for SmolLM2, 125 MiB at Llama 3's vocabulary.
DEFAULT_CHUNK_SIZE = 256


def output_layer(model: nn.Module) -> nn.Module:
    """The module that maps final hidden states to logits (``lm_head`` for Hugging Face causal LMs)."""
    layer = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(layer, nn.Module):
        raise ConfigError(
            f"{type(model).__name__} has no output layer (get_output_embeddings() returned {layer!r}); "
            "logits at selected positions need a Hugging Face causal LM"
        )
    return layer


@contextlib.contextmanager
def logits_at(model: nn.Module, rows: Tensor, positions: Tensor) -> Iterator[None]:
    """Within the block, the model's forward returns logits (1, S, V) at the S positions ``(rows, positions)``.

    Args:
        model: a Hugging Face causal LM.
        rows: (S,) batch indices.
        positions: (S,) sequence positions, so that output ``s`` is the logits after ``h[rows[s], positions[s]]``.
    """

    def select(module: nn.Module, args: tuple) -> tuple:
        hidden = args[0]  # (B, T, d)
        if hidden.dim() != 3:
            raise RuntimeError(
                f"the output layer got hidden states of shape {tuple(hidden.shape)}, not (B, T, d)"
            )
        return (hidden[rows, positions].unsqueeze(0), *args[1:])  # (1, S, d)

    handle = output_layer(model).register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def _chunk_log_probs(logits: Tensor, targets: Tensor) -> Tensor:
    """``log softmax(logits)[target]`` per row in float32; (C, V), (C,) -> (C,)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (C, V)
    return log_probs.gather(1, targets[:, None]).squeeze(1)  # (C,)


def target_log_probs(logits: Tensor, targets: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    """The float32 log-probability of each target token, ``chunk_size`` positions at a time.

    Args:
        logits: (S, V) or (1, S, V) logits in any float dtype.
        targets: (S,) token ids.
        chunk_size: positions per float32 log-softmax; with gradients each chunk is recomputed in backward.

    Returns:
        (S,) float32.
    """
    if chunk_size < 1:
        raise ConfigError(f"option 'chunk_size' must be >= 1, got {chunk_size}")
    logits = logits.reshape(-1, logits.shape[-1])  # (S, V)
    if logits.shape[0] <= chunk_size:
        return _chunk_log_probs(logits, targets)  # (S,)
    recompute = torch.is_grad_enabled() and logits.requires_grad
    pieces = []
    # split, not slicing: one backward node gathers the chunks' gradients into one (S, V) tensor
    for chunk, chunk_targets in zip(logits.split(chunk_size), targets.split(chunk_size), strict=True):
        if recompute:
            pieces.append(checkpoint(_chunk_log_probs, chunk, chunk_targets, use_reentrant=False))
        else:
            pieces.append(_chunk_log_probs(chunk, chunk_targets))
    return torch.cat(pieces)  # (S,)
