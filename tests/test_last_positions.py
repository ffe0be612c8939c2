"""`last_positions`: the prompt pass keeps the same last-position logits as ``logits_to_keep=k``."""

from __future__ import annotations

import torch

from gatera_lab.evaluation.choice_scoring import last_positions


def test_indices_are_the_last_positions():
    assert last_positions(7, 3, torch.device("cpu")).tolist() == [4, 5, 6]


def test_same_logits_as_an_integer_logits_to_keep(tiny_llama, token_batch):
    ids, mask = token_batch["input_ids"], token_batch["attention_mask"]  # (B, T)
    with torch.no_grad():
        for count in (1, 3):
            by_slice = tiny_llama(input_ids=ids, attention_mask=mask, logits_to_keep=count).logits
            index = last_positions(ids.shape[1], count, ids.device)
            by_index = tiny_llama(input_ids=ids, attention_mask=mask, logits_to_keep=index).logits
            assert by_index.shape == (ids.shape[0], count, tiny_llama.config.vocab_size)
            assert torch.equal(by_slice, by_index)
