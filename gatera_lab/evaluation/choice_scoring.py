"""Log-likelihood scoring: the prediction is the candidate label the model finds most likely after the prompt.

For a prompt ``p`` and the response tokens ``r_1..r_n`` of candidate ``k`` (``"the correct answer is
answer2"``), the score is the sum of the label tokens' log-probabilities,

    s_k = sum_{j >= start_k} log P(r_j | p, r_<j),    prediction = argmax_k s_k,

deterministic and one forward per candidate token instead of up to 32 generated ones. With
``use_cache=True`` the prompts run once and only the response tokens run again on a copy of their
key/value cache; ``use_cache=False`` runs every (prompt, candidate) sequence in full (the reference the
cached path is tested against). Prompts are left-padded, so explicit position ids (``cumsum(mask) - 1``)
keep every real token at the position it would have without padding.

What it costs stays bounded whatever the batch: the candidates run ``candidate_tokens`` tokens of
sequence at a time (each chunk copies its prompts' cache once per candidate, then drops it); the output
layer runs only at the positions that predict a scored token (`gatera_lab.models.selected_logits.logits_at`);
the float32 log-softmax takes 256 of those at a time (`target_log_probs`). The log-probabilities are then laid
into an (N, Tc) table and summed per candidate in the same order as a full (N, Tc, V) log-softmax would.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from gatera_lab.models.selected_logits import logits_at, target_log_probs

# Tokens of (prompt + candidate) sequence per response forward: bounds the copied key/value cache and the
# activations of a chunk of candidates (about 0.1 GB for SmolLM2-135M).
DEFAULT_CANDIDATE_TOKENS = 8192


def last_positions(length: int, count: int, device: torch.device) -> Tensor:
    """The indices of the last ``count`` of ``length`` positions, (count,), for ``logits_to_keep``.

    An integer ``logits_to_keep=k`` slices the hidden states ``[:, -k:]``, a strided view, and the output layer
    applied to a strided 3-D input broadcasts its (V, d) weight to every row (a copy of B x d x V values,
    the largest single cost of evaluating SmolLM2); index positions give a contiguous (B, k, d) and the same
    logits (`benchmarks/last_position_logits.py` checks both and times them).
    """
    return torch.arange(length - count, length, device=device)


def _select_cache(cache: object, rows: Tensor) -> object:
    """A cache holding ``rows`` of ``cache``'s batch (copied), leaving ``cache`` itself as it was."""
    selected = copy.copy(cache)
    selected.layers = [copy.copy(layer) for layer in cache.layers]
    selected.reorder_cache(rows)  # index_select per layer: new tensors, the shared prompt cache untouched
    return selected


def _candidate_chunks(count: int, sequence_length: int, candidate_tokens: int) -> list[slice]:
    """Slices of ``count`` candidates with at most ``candidate_tokens`` sequence tokens each (one at least)."""
    size = max(1, candidate_tokens // max(1, sequence_length))
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]


def _scored_log_probs(
    model: nn.Module, tokens: Tensor, scored: Tensor, offset: int, first: Tensor | None, **forward: object
) -> Tensor:
    """``log P(token)`` at every scored response position, 0 elsewhere; (n, Tc).

    Response token ``j`` is predicted by the forward's position ``offset + j - 1``; token 0 by ``first``
    (the prompt's last logits, (n, V)) when given, else by the forward's position ``offset - 1``.
    """
    table = torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)  # (n, Tc)
    start = 1 if first is not None else 0
    rows, columns = scored[:, start:].nonzero(as_tuple=True)  # (S,): scored tokens the forward predicts
    columns = columns + start
    if rows.numel():
        with logits_at(model, rows, columns + offset - 1):
            logits = model(**forward).logits  # (1, S, V)
        table[rows, columns] = target_log_probs(logits, tokens[rows, columns])  # (S,)
    if first is not None:
        first_rows = scored[:, 0].nonzero(as_tuple=True)[0]  # (n0,)
        table[first_rows, 0] = target_log_probs(first[first_rows], tokens[first_rows, 0])
    return table


@torch.no_grad()
def score_candidates(
    model: nn.Module,
    batch: dict[str, Tensor],
    use_cache: bool = True,
    candidate_tokens: int = DEFAULT_CANDIDATE_TOKENS,
) -> Tensor:
    """The score ``s_k`` of every candidate, (B, K); ``-inf`` where a row has fewer than K candidates.

    Args:
        model: a Hugging Face causal LM (any that accepts ``position_ids`` and ``logits_to_keep``).
        batch: an `EvalCollator` batch (``input_ids``, ``attention_mask``, ``candidate_ids``,
            ``candidate_mask``, ``score_mask``).
        use_cache: run the prompts once and reuse their key/value cache for the candidates.
        candidate_tokens: (prompt + candidate) tokens per response forward; candidates run in chunks of
            ``candidate_tokens // (Tp + Tc)`` (at least one), which bounds the memory of a batch.
    """
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]  # (B, Tp)
    candidates, candidate_mask = batch["candidate_ids"], batch["candidate_mask"]  # (B, K, Tc)
    batch_size, choices, response_length = candidates.shape
    prompt_length = input_ids.shape[1]
    rows, columns = candidate_mask.any(-1).nonzero(as_tuple=True)  # (N,) one per real candidate
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, Tp)
    response_positions = attention_mask.sum(-1, keepdim=True) + torch.arange(
        response_length, device=input_ids.device
    )  # (B, Tc)
    tokens = candidates[rows, columns]  # (N, Tc)
    mask = candidate_mask[rows, columns]  # (N, Tc)
    scored = (batch["score_mask"][rows, columns] * mask) != 0  # (N, Tc)
    full_mask = torch.cat([attention_mask[rows], mask], dim=1)  # (N, Tp + Tc)
    if use_cache:
        prompt = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=last_positions(prompt_length, 1, input_ids.device),
        )
        prompt_logits = prompt.logits[:, -1]  # (B, V): the first response token's prediction
    tables = []
    for chunk in _candidate_chunks(len(rows), prompt_length + response_length, candidate_tokens):
        chunk_rows = rows[chunk]  # (n,)
        if use_cache:
            forward = {
                "input_ids": tokens[chunk],
                "attention_mask": full_mask[chunk],
                "position_ids": response_positions[chunk_rows],
                "past_key_values": _select_cache(prompt.past_key_values, chunk_rows),
                "use_cache": True,
            }
            first, offset = prompt_logits[chunk_rows], 0
        else:
            forward = {
                "input_ids": torch.cat([input_ids[chunk_rows], tokens[chunk]], dim=1),  # (n, Tp + Tc)
                "attention_mask": full_mask[chunk],
                "position_ids": torch.cat([positions[chunk_rows], response_positions[chunk_rows]], dim=1),
                "use_cache": False,
            }
            first, offset = None, prompt_length
        tables.append(_scored_log_probs(model, tokens[chunk], scored[chunk], offset, first, **forward))
    scores = torch.cat(tables).sum(-1)  # (N,)
    table = torch.full((batch_size, choices), float("-inf"), device=scores.device)  # (B, K)
    table[rows, columns] = scores
    return table


def predict_by_likelihood(model: nn.Module, batch: dict[str, Tensor], use_cache: bool = True) -> Tensor:
    """Index of the highest-scoring candidate per row, (B,)."""
    return score_candidates(model, batch, use_cache=use_cache).argmax(-1)
