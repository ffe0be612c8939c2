"""The next-token loss on response tokens only (HiRA/GateRA) or on every real token (LLM-Adapters).

    loss = -(1/S) sum_{(b, t) selected} log softmax(logits[b, t])[input_ids[b, t + 1]]

`loss_targets` finds the S selected positions; `GateraModule` asks the model for the logits at those
positions only (`gatera_lab.models.selected_logits.logits_at`), so the (B, T, V) output layer is never
computed; `target_loss` takes those (S, V) logits. The float32 log-softmax runs ``chunk_size`` positions at a
time (`gatera_lab.models.selected_logits.target_log_probs`). The mean is taken by ``nll_loss`` over the same B
(T-1) slots as ``F.cross_entropy`` with ``ignore_index`` over all positions (the unselected ones ignored), so
its summation order is kept: given the same logits, value and gradient are bitwise those of the plain
formula (`tests/test_causal_lm_loss.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from gatera_lab.models.selected_logits import DEFAULT_CHUNK_SIZE, target_log_probs

LossOn = Literal["response", "all"]


@dataclass(frozen=True)
class LossTargets:
    """The S target tokens of a batch and the positions whose logits predict them."""

    selected: Tensor  # (B, T-1) bool: position t predicts a target token t + 1
    rows: Tensor  # (S,)
    positions: Tensor  # (S,)
    tokens: Tensor  # (S,) input_ids[rows, positions + 1]


def target_mask(attention_mask: Tensor, response_mask: Tensor, loss_on: LossOn) -> Tensor:
    """The (B, T) mask of the tokens ``loss_on`` predicts: response tokens, or every real token."""
    return response_mask if loss_on == "response" else attention_mask


def target_count(batch: dict[str, Tensor], loss_on: LossOn) -> Tensor:
    """How many target tokens a batch holds: the ``S`` of the loss's mean (a 0-d tensor)."""
    return (target_mask(batch["attention_mask"], batch["response_mask"], loss_on)[:, 1:] != 0).sum()


def loss_targets(
    input_ids: Tensor, attention_mask: Tensor, response_mask: Tensor, loss_on: LossOn
) -> LossTargets:
    """The targets of ``loss_on``: ``"response"`` counts response tokens only, ``"all"`` every real token.

    Args:
        input_ids: (B, T) token ids.
        attention_mask: (B, T), 1 on real tokens.
        response_mask: (B, T), 1 on response tokens.
        loss_on: ``"response"`` or ``"all"``.
    """
    selected = target_mask(attention_mask, response_mask, loss_on)[:, 1:] != 0  # (B, T-1)
    rows, positions = selected.nonzero(as_tuple=True)  # (S,), (S,): one host sync
    return LossTargets(selected, rows, positions, input_ids[:, 1:][rows, positions])


def target_loss(target_logits: Tensor, targets: LossTargets, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    """The mean cross-entropy over the targets, from the logits at their positions only.

    Args:
        target_logits: (S, V) or (1, S, V), row ``s`` the logits at ``(targets.rows[s], targets.positions[s])``.
        targets: from `loss_targets`.
        chunk_size: positions per float32 log-softmax (`gatera_lab.models.selected_logits.target_log_probs`).
    """
    log_probs = target_log_probs(target_logits, targets.tokens, chunk_size)  # (S,)
    slots = log_probs.new_zeros((*targets.selected.shape, 1)).index_put(
        (targets.rows, targets.positions), log_probs[:, None]
    )  # (B, T-1, 1)
    # (B (T-1),): class 0 of a slot, or ignored
    slot_targets = torch.where(targets.selected, 0, -100).reshape(-1)
    return F.nll_loss(slots.reshape(-1, 1), slot_targets, ignore_index=-100)


def causal_lm_loss(
    logits: Tensor, input_ids: Tensor, attention_mask: Tensor, response_mask: Tensor, loss_on: LossOn
) -> Tensor:
    """The same loss from full (B, T, V) logits (for callers that already hold them).

    Args:
        logits: (B, T, V) next-token logits.
        input_ids: (B, T) token ids.
        attention_mask: (B, T), 1 on real tokens.
        response_mask: (B, T), 1 on response tokens.
        loss_on: ``"response"`` counts response targets only, ``"all"`` every real target token.
    """
    targets = loss_targets(input_ids, attention_mask, response_mask, loss_on)
    return target_loss(logits[targets.rows, targets.positions], targets)  # (S, V) -> ()
