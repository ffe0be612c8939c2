"""`causal_lm_loss` equals cross-entropy over every position with ignored slots, bit for bit.

The loss runs its log-softmax on the selected target positions only; the reference below is the plain
formula over all B (T-1) positions. Value and gradient must be bitwise equal, so that runs trained before and
after the change stay identical (the study's records pair runs by seed).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gatera_lab.training.causal_lm_loss import causal_lm_loss


def reference_loss(logits, input_ids, attention_mask, response_mask, loss_on):
    target_mask = response_mask if loss_on == "response" else attention_mask
    targets = input_ids[:, 1:].masked_fill(target_mask[:, 1:] == 0, -100)  # (B, T-1)
    predictions = logits[:, :-1].float()  # (B, T-1, V)
    return F.cross_entropy(
        predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1), ignore_index=-100
    )


def batch(seed: int, rows: int = 6, length: int = 97, vocab: int = 1031, dtype=torch.bfloat16):
    generator = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(rows, length, vocab, generator=generator)).to(dtype)  # (B, T, V)
    input_ids = torch.randint(0, vocab, (rows, length), generator=generator)  # (B, T)
    attention = torch.ones(rows, length, dtype=torch.long)
    response = torch.zeros(rows, length, dtype=torch.long)
    for row in range(rows):
        padding = int(torch.randint(0, length // 3, (1,), generator=generator))
        answer = int(torch.randint(1, 12, (1,), generator=generator))
        attention[row, :padding] = 0  # left padding
        response[row, length - answer :] = 1
    return logits, input_ids, attention, response


def value_and_gradient(loss_function, logits, *rest):
    leaf = logits.detach().clone().requires_grad_(True)
    loss = loss_function(leaf, *rest)
    (gradient,) = torch.autograd.grad(loss, leaf)
    return loss.detach(), gradient


@pytest.mark.parametrize("loss_on", ["response", "all"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_and_gradient_are_bitwise_the_reference(loss_on, dtype, seed):
    logits, input_ids, attention, response = batch(seed, dtype=dtype)
    loss, gradient = value_and_gradient(causal_lm_loss, logits, input_ids, attention, response, loss_on)
    expected_loss, expected_gradient = value_and_gradient(
        reference_loss, logits, input_ids, attention, response, loss_on
    )
    assert torch.equal(loss, expected_loss)
    assert gradient.dtype == logits.dtype
    assert torch.equal(gradient, expected_gradient)


def test_the_mean_keeps_the_summation_order_of_the_reference():
    """A plain mean over the selected positions differs from the reference in the last bits here."""
    logits, input_ids, attention, response = batch(0, rows=8, length=600, vocab=257)
    selected = attention[:, 1:] != 0  # (B, T-1)
    plain_mean = F.cross_entropy(logits[:, :-1][selected].float(), input_ids[:, 1:][selected])
    expected = reference_loss(logits, input_ids, attention, response, "all")
    assert not torch.equal(plain_mean, expected)
    assert torch.equal(causal_lm_loss(logits, input_ids, attention, response, "all"), expected)


def test_a_batch_without_targets_gives_nan_like_the_reference():
    logits, input_ids, attention, response = batch(4)
    response.zero_()
    assert causal_lm_loss(logits, input_ids, attention, response, "response").isnan()
    assert reference_loss(logits, input_ids, attention, response, "response").isnan()
