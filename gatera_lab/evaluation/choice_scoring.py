"""Log-likelihood scoring: the prediction is the candidate label the model finds most likely after the prompt.

For a prompt ``p`` and the response tokens ``r_1..r_n`` of candidate ``k`` (``"the correct answer is
answer2"``), the score is the sum of the label tokens' log-probabilities,

    s_k = sum_{j >= start_k} log P(r_j | p, r_<j),    prediction = argmax_k s_k,

deterministic and one forward per candidate token instead of up to 32 generated ones. With
``use_cache=True`` the prompts run once, their key/value cache is copied to each candidate and only the
response tokens run again; ``use_cache=False`` runs every (prompt, candidate) sequence in full (the
reference the cached path is tested against). Prompts are left-padded, so explicit position ids
(``cumsum(mask) - 1``) keep every real token at the position it would have without padding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _response_log_probs(logits: Tensor, tokens: Tensor, score_mask: Tensor) -> Tensor:
    """Sum over scored positions of ``log softmax(logits)[token]``; logits (N, Tc, V) -> (N,)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (N, Tc, V)
    token_log_probs = log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (N, Tc)
    return (token_log_probs * score_mask).sum(-1)  # (N,)


def last_positions(length: int, count: int, device: torch.device) -> Tensor:
    """The indices of the last ``count`` of ``length`` positions, (count,), for ``logits_to_keep``.

    An integer ``logits_to_keep=k`` slices the hidden states ``[:, -k:]``, a strided view, and the output layer
    applied to a strided 3-D input broadcasts its (V, d) weight to every row (a copy of B x d x V values,
    the largest single cost of evaluating SmolLM2); index positions give a contiguous (B, k, d) and the same
    logits (`benchmarks/last_position_logits.py` checks both and times them).
    """
    return torch.arange(length - count, length, device=device)


@torch.no_grad()
def score_candidates(model: nn.Module, batch: dict[str, Tensor], use_cache: bool = True) -> Tensor:
    """The score ``s_k`` of every candidate, (B, K); ``-inf`` where a row has fewer than K candidates.

    Args:
        model: a Hugging Face causal LM (any that accepts ``position_ids`` and ``logits_to_keep``).
        batch: an `EvalCollator` batch (``input_ids``, ``attention_mask``, ``candidate_ids``,
            ``candidate_mask``, ``score_mask``).
        use_cache: run the prompts once and reuse their key/value cache for the candidates.
    """
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]  # (B, Tp)
    candidates, candidate_mask = batch["candidate_ids"], batch["candidate_mask"]  # (B, K, Tc)
    batch_size, choices, response_length = candidates.shape
    rows, columns = candidate_mask.any(-1).nonzero(as_tuple=True)  # (N,) one per real candidate
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, Tp)
    response_positions = attention_mask.sum(-1, keepdim=True) + torch.arange(
        response_length, device=input_ids.device
    )  # (B, Tc)
    tokens = candidates[rows, columns]  # (N, Tc)
    mask = candidate_mask[rows, columns]  # (N, Tc)
    full_mask = torch.cat([attention_mask[rows], mask], dim=1)  # (N, Tp + Tc)
    if use_cache:
        prompt = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=last_positions(input_ids.shape[1], 1, input_ids.device),
        )
        cache = prompt.past_key_values
        cache.reorder_cache(rows)  # one copy of each prompt's cache per candidate
        response = model(
            input_ids=tokens,
            attention_mask=full_mask,
            position_ids=response_positions[rows],
            past_key_values=cache,
            use_cache=True,
        )
        logits = torch.cat([prompt.logits[rows], response.logits[:, :-1]], dim=1)  # (N, Tc, V)
    else:
        sequences = torch.cat([input_ids[rows], tokens], dim=1)  # (N, Tp + Tc)
        sequence_positions = torch.cat([positions[rows], response_positions[rows]], dim=1)  # (N, Tp + Tc)
        output = model(
            input_ids=sequences,
            attention_mask=full_mask,
            position_ids=sequence_positions,
            use_cache=False,
            logits_to_keep=last_positions(sequences.shape[1], response_length + 1, sequences.device),
        )
        logits = output.logits[:, :-1]  # (N, Tc, V): position t predicts token t + 1
    scores = _response_log_probs(logits, tokens, batch["score_mask"][rows, columns] * mask)  # (N,)
    table = torch.full((batch_size, choices), float("-inf"), device=scores.device)  # (B, K)
    table[rows, columns] = scores
    return table


def predict_by_likelihood(model: nn.Module, batch: dict[str, Tensor], use_cache: bool = True) -> Tensor:
    """Index of the highest-scoring candidate per row, (B,)."""
    return score_candidates(model, batch, use_cache=use_cache).argmax(-1)
