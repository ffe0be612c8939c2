"""`token_variance_split`: the variance of gates split into across tokens and across modules, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from gatera_lab.diagnostics.token_variance import stacked_real_gates, token_variance_split


def test_split_by_hand():
    gates = torch.tensor([[0.2, 0.4], [0.8, 0.4]])  # (M=2, N=2)
    split = token_variance_split(gates)
    # module means 0.3 and 0.6; within = ((0.1^2 + 0.1^2) / 2 + (0.2^2 + 0.2^2) / 2) / 2 = 0.025
    assert split["within"] == pytest.approx(0.025)
    # overall mean 0.45; between = (0.15^2 + 0.15^2) / 2 = 0.0225
    assert split["between"] == pytest.approx(0.0225)
    assert split["token_share"] == pytest.approx(0.025 / 0.0475)
    # module 0 closed on average (0.3): no token above 0.5; module 1 open (0.6): token 2 (0.4) flips
    assert split["flips"] == pytest.approx(1 / 4)


def test_total_is_the_pooled_variance():
    gates = torch.rand(7, 33, generator=torch.Generator().manual_seed(0))  # (M, N)
    split = token_variance_split(gates)
    assert split["total"] == pytest.approx(float(gates.double().var(unbiased=False)))


def test_static_and_token_only_gates():
    static = token_variance_split(torch.tensor([[0.1] * 5, [0.9] * 5]))
    assert static["token_share"] == pytest.approx(0.0) and static["flips"] == 0.0
    by_token = token_variance_split(torch.tensor([[0.1, 0.9, 0.3], [0.1, 0.9, 0.3]]))
    assert by_token["between"] == pytest.approx(0.0, abs=1e-12) and by_token["token_share"] == pytest.approx(
        1.0
    )
    assert math.isnan(token_variance_split(torch.full((3, 4), 0.5))["token_share"])


def test_empty_and_bad_shapes():
    assert all(math.isnan(value) for value in token_variance_split(stacked_real_gates({})).values())
    with pytest.raises(ValueError, match="modules, tokens"):
        token_variance_split(torch.zeros(3))


def test_stacking_keeps_one_token_order():
    chunks = {
        "a": [torch.tensor([0.1, 0.2]), torch.tensor([0.3])],
        "b": [torch.tensor([0.4, 0.5]), torch.tensor([0.6])],
    }
    expected = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype=torch.float64)
    assert torch.allclose(stacked_real_gates(chunks), expected)
