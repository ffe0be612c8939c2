"""The next-token loss on response tokens only (HiRA/GateRA) or on every real token (LLM-Adapters)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

LossOn = Literal["response", "all"]


def causal_lm_loss(
    logits: Tensor, input_ids: Tensor, attention_mask: Tensor, response_mask: Tensor, loss_on: LossOn
) -> Tensor:
    """Mean cross-entropy of predicting token t+1 from positions <= t, over the selected target tokens.

        loss = -(1/S) sum_{(b, t) selected} log softmax(logits[b, t])[input_ids[b, t + 1]]

    The log-softmax runs on the S selected positions only, in float32: with the answer-text format a batch
    of 8 rows of 600 tokens has a few dozen targets, and a float32 log-softmax over every position's 49,152
    logits (and its backward) would cost a third of the training step and about 3 GB. The result is
    bitwise equal to ``F.cross_entropy`` over all B (T-1) positions with ``ignore_index``, in value and in
    gradient: the log-softmax is computed row by row either way, and the mean is taken by the same
    ``nll_loss`` over the same B (T-1) slots (the unselected ones ignored), so its summation order is kept
    (`tests/test_causal_lm_loss.py`; `benchmarks/response_loss.py` times both).

    Args:
        logits: (B, T, V) next-token logits.
        input_ids: (B, T) token ids.
        attention_mask: (B, T), 1 on real tokens.
        response_mask: (B, T), 1 on response tokens.
        loss_on: ``"response"`` counts response targets only, ``"all"`` every real target token.
    """
    target_mask = response_mask if loss_on == "response" else attention_mask
    selected = target_mask[:, 1:] != 0  # (B, T-1)
    rows, positions = selected.nonzero(as_tuple=True)  # (S,), (S,)
    targets = input_ids[:, 1:][rows, positions]  # (S,)
    log_probs = F.log_softmax(logits[rows, positions].float(), dim=-1)  # (S, V)
    target_log_probs = log_probs.gather(1, targets[:, None])  # (S, 1)
    slots = target_log_probs.new_zeros((*selected.shape, 1)).index_put(
        (rows, positions), target_log_probs
    )  # (B, T-1, 1)
    slot_targets = torch.where(selected, 0, -100).reshape(-1)  # (B (T-1),): class 0 of each slot, or ignored
    return F.nll_loss(slots.reshape(-1, 1), slot_targets, ignore_index=-100)
