"""One call per evaluation batch, for a LightningModule's ``validation_step`` / ``test_step`` or a plain loop.

Typical use inside a LightningModule::

    self.val_accuracy = TaskAccuracy(task_names)           # in __init__
    out = evaluate_batch(self.model, batch)                 # in validation_step, batch from EvalCollator
    self.val_accuracy.update(out.task_index, out.correct)
    self.log_dict({f"val/acc_{k}": v for k, v in self.val_accuracy.compute().items()})  # epoch end
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase

from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.choice_items import EvalCollator, EvalItem
from gatera_lab.evaluation.choice_scoring import score_candidates
from gatera_lab.evaluation.generation_matching import predict_by_generation
from gatera_lab.evaluation.task_accuracy import TaskAccuracy

Protocol = Literal["likelihood", "generation"]


@dataclass
class BatchEvaluation:
    """Predictions of one batch: ``predicted``, ``correct``, ``task_index`` (B,); scores or responses."""

    predicted: Tensor  # (B,) candidate index, -1 for an unmatched generation
    correct: Tensor  # (B,) bool
    task_index: Tensor  # (B,)
    scores: Tensor | None = None  # (B, K) candidate log-likelihoods (likelihood protocol)
    predicted_acc: Tensor | None = None  # (B,) argmax of the scores (likelihood protocol)
    predicted_acc_norm: Tensor | None = None  # (B,) argmax of the scores per character (likelihood protocol)
    gold: Tensor | None = None  # (B,)
    row_ids: list[str] | None = None  # each row's id in its test set ("" when unknown)
    responses: list[str] | None = None  # generated text (generation protocol)


def evaluate_batch(
    model: nn.Module,
    batch: dict[str, Tensor],
    protocol: Protocol = "likelihood",
    tokenizer: PreTrainedTokenizerBase | None = None,
    max_new_tokens: int = 32,
    num_beams: int = 1,
    use_cache: bool = True,
) -> BatchEvaluation:
    """Predict every row of an `EvalCollator` batch with ``protocol`` and compare with ``gold``.

    Args:
        model: a Hugging Face causal LM (adapters injected or not).
        batch: a batch from `EvalCollator`, on the model's device.
        protocol: ``likelihood`` (argmax of the candidates' log-likelihoods, per character for a
            ``length_normalised`` row; deterministic, fast) or
            ``generation`` (the papers' protocol: generate, first regex match of the label set).
        tokenizer: needed by ``generation`` to decode responses.
        max_new_tokens: generation length (the papers use 32).
        num_beams: beams for generation (the papers use 4; 1 is greedy).
        use_cache: likelihood only; reuse the prompts' key/value cache for the candidates.
    """
    gold = batch["gold"]  # (B,)
    if protocol == "likelihood":
        scores = score_candidates(model, batch, use_cache=use_cache)  # (B, K)
        by_score = scores.argmax(-1)  # (B,) acc
        by_score_per_char = (scores / batch["candidate_chars"]).argmax(-1)  # (B,) acc_norm
        predicted = torch.where(batch["length_normalised"], by_score_per_char, by_score)  # (B,)
        return BatchEvaluation(
            predicted,
            predicted == gold,
            batch["task_index"],
            scores=scores,
            predicted_acc=by_score,
            predicted_acc_norm=by_score_per_char,
            gold=gold,
            row_ids=batch.get("row_ids"),
        )
    if protocol == "generation":
        if tokenizer is None:
            raise ConfigError("protocol 'generation' needs the tokenizer to decode responses")
        if batch["choice_text"].any():
            raise ConfigError(
                "protocol 'generation' matches answer labels and cannot score choice texts; use "
                "'likelihood' with data format 'choice_text'"
            )
        predicted, responses = predict_by_generation(
            model, tokenizer, batch, max_new_tokens=max_new_tokens, num_beams=num_beams
        )
        return BatchEvaluation(
            predicted,
            predicted == gold,
            batch["task_index"],
            responses=responses,
            gold=gold,
            row_ids=batch.get("row_ids"),
        )
    raise ConfigError(f"option 'protocol' must be 'likelihood' or 'generation', got {protocol!r}")


def _to_device(batch: dict[str, Tensor | list], device: torch.device) -> dict[str, Tensor | list]:
    return {key: value.to(device) if isinstance(value, Tensor) else value for key, value in batch.items()}


def evaluate_items(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[EvalItem],
    task_names: Sequence[str],
    protocol: Protocol = "likelihood",
    batch_size: int = 8,
    progress: Callable[[int, int, float], None] | None = None,
    **options: int | bool,
) -> tuple[dict[str, float], dict[str, tuple[int, int]], list[BatchEvaluation]]:
    """Evaluate ``items`` in batches (outside Lightning): accuracies, ``{task: (correct, total)}``, batches.

    Items are sorted by prompt length into batches (less padding); ``progress(done, total, seconds)``
    is called after each batch.
    """
    if batch_size < 1:
        raise ConfigError(f"option 'batch_size' must be >= 1, got {batch_size}")
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = EvalCollator(pad_id)
    metric = TaskAccuracy(task_names).to(device)
    order = sorted(range(len(items)), key=lambda index: len(items[index].prompt_ids))
    outputs, start = [], time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        for first in range(0, len(order), batch_size):
            batch = _to_device(collate([items[index] for index in order[first : first + batch_size]]), device)
            output = evaluate_batch(model, batch, protocol, tokenizer, **options)
            metric.update(output.task_index, output.correct)
            outputs.append(output)
            if progress is not None:
                progress(min(first + batch_size, len(order)), len(order), time.perf_counter() - start)
    finally:
        model.train(was_training)
    accuracies = {name: float(value) for name, value in metric.compute().items()}
    return accuracies, metric.counts(), outputs
