"""lm-evaluation-harness's model interface on an in-memory causal LM (a base model with a gatera-lab adapter).

`AdaptedModelLM` is an ``lm_eval.api.model.TemplateLM``: lm-eval's tasks, prompts and metrics run on the model
as it is in memory (adapter injected, gates part of the forward), without exporting or reloading it.

The three request types, with HFLM's (``lm_eval.models.huggingface``) semantics:

- ``loglikelihood(context, continuation)`` -> ``(log P(continuation | context), is_greedy)``. TemplateLM
  tokenises the pair: trailing spaces of the context move to the continuation, ``whole = enc(context +
  continuation)``, ``ctx = enc(context)`` (special tokens as the tokenizer adds them) and the continuation is
  ``whole[len(ctx):]``; an empty context is the prefix token (BOS, else EOS). For continuation tokens
  ``c_1..c_n`` after context tokens ``x``,

      log P = sum_j log softmax(f(x, c_<j))[c_j],    is_greedy = all_j argmax f(x, c_<j) = c_j,

  one forward of ``(x + c)[-(L + 1):][:-1]`` per request (``L`` the model's length: the context loses tokens
  on the left), requests batched longest first and padded on the right.
- ``loglikelihood_rolling(text)``: the text's tokens (no special tokens) in lm-eval's disjoint rolling windows
  of ``L`` tokens, the first conditioned on the prefix token; the sum of their log-likelihoods.
- ``generate_until(context, gen_kwargs)``: greedy ``model.generate`` (sampling options are ignored), at most
  ``max_gen_toks`` new tokens (256 by default), stopped when every row contains one of the ``until`` strings
  (and EOS); the text is cut before the first of them. Contexts keep their last ``L - max_gen_toks`` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from torch import Tensor, nn
from transformers import PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from gatera_lab.models.selected_logits import logits_at

DEFAULT_MAX_GEN_TOKS = 256
DEFAULT_MAX_LENGTH = 2048

# ((context, continuation) or None, context tokens, continuation tokens), as TemplateLM hands them over
TokenRequest = tuple[tuple[str, str] | None, list[int], list[int]]


class _StopAtStrings(StoppingCriteria):
    """Stops a row once its new tokens, decoded, contain one of ``stops``."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: Sequence[str], prompt_length: int) -> None:
        self.tokenizer, self.stops, self.prompt_length = tokenizer, list(stops), prompt_length

    def __call__(self, input_ids: Tensor, scores: Tensor, **kwargs: Any) -> Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length :])  # (B,) new text so far
        done = [any(stop in text for stop in self.stops) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # (B,)


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any of ``stops``."""
    end = min((index for stop in stops if stop and (index := text.find(stop)) >= 0), default=len(text))
    return text[:end]


class AdaptedModelLM(TemplateLM):
    """lm-eval's ``LM`` on a loaded Hugging Face causal LM and its tokenizer (adapted or not)."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 8,
        max_length: int | None = None,
    ) -> None:
        """
        Args:
            model: a Hugging Face causal LM, e.g. `load_checkpoint_adapter(...).model`; put in eval mode.
            tokenizer: its tokenizer.
            batch_size: requests per forward (log-likelihoods) or per ``generate`` call.
            max_length: the most tokens per forward; default the model's ``max_position_embeddings``.
        """
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        config = getattr(model, "config", None)
        self._max_length = (
            max_length or getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH
        )
        self._device = next(model.parameters()).device

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        """What an empty context is: BOS where the tokenizer has one, else EOS."""
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.eot_token_id

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else self.eot_token_id

    @property
    def tokenizer_name(self) -> str:
        return getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        """Token ids of ``string``; ``None`` adds the tokenizer's special tokens unless it starts with BOS."""
        if add_special_tokens is None:
            bos = self.tokenizer.bos_token
            add_special_tokens = not (bos and string.startswith(bos))
        return list(self.tokenizer(string, add_special_tokens=add_special_tokens)["input_ids"])

    @torch.no_grad()
    def _loglikelihood_tokens(
        self, requests: list[TokenRequest], disable_tqdm: bool = False, **kwargs: Any
    ) -> list[tuple[float, bool]]:
        """``(log P(continuation | context), is_greedy)`` per request, in the order given."""
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda index: -len(requests[index][1] + requests[index][2]))
        for first in range(0, len(order), self.batch_size):
            chunk = order[first : first + self.batch_size]
            inputs, scored = [], []
            for index in chunk:
                _, context, continuation = requests[index]
                if not continuation:
                    raise ValueError(f"request {requests[index][0]!r} has an empty continuation")
                whole = (context + continuation)[-(self.max_length + 1) :]
                inputs.append(whole[:-1])
                kept = min(len(continuation), len(whole) - 1)  # all of it unless longer than the model
                scored.append(continuation[len(continuation) - kept :])
            width = max(len(ids) for ids in inputs)
            input_ids = torch.full((len(chunk), width), self.pad_token_id, dtype=torch.long)  # (B, T)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)  # (B, T)
            for row, ids in enumerate(inputs):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention_mask[row, : len(ids)] = 1
            rows = [row for row, target in enumerate(scored) for _ in target]
            positions = [
                p
                for row, target in enumerate(scored)
                for p in range(len(inputs[row]) - len(target), len(inputs[row]))
            ]
            with logits_at(
                self.model,
                torch.tensor(rows, device=self.device),
                torch.tensor(positions, device=self.device),
            ):
                logits = self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention_mask.to(self.device),
                    use_cache=False,
                ).logits[0]  # (S, V): the continuation tokens' predictions only, row after row
            start = 0
            for row, index in enumerate(chunk):
                target = scored[row]
                log_probs = torch.log_softmax(logits[start : start + len(target)].float(), dim=-1)  # (n, V)
                start += len(target)
                tokens = torch.tensor(target, device=log_probs.device)  # (n,)
                log_likelihood = float(log_probs.gather(-1, tokens[:, None]).sum())
                is_greedy = bool((log_probs.argmax(-1) == tokens).all())
                results[index] = (log_likelihood, is_greedy)
                if requests[index][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[index][0], results[index])
        return results  # type: ignore[return-value]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """The log-likelihood of each request's whole text (``args == (text,)``), in rolling windows."""
        totals = []
        for request in requests:
            (text,) = request.args
            windows = map(
                make_disjoint_window,
                get_rolling_token_windows(
                    token_list=self.tok_encode(text, add_special_tokens=False),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                ),
            )
            scores = self._loglikelihood_tokens([(None, context, target) for context, target in windows])
            total = sum(score for score, _ in scores)
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
            totals.append(total)
        return totals

    @torch.no_grad()
    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations of ``args == (context, gen_kwargs)``, cut before the first ``until`` string."""
        results: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}  # requests with the same generation options run together
        for index, request in enumerate(requests):
            groups.setdefault(repr(sorted(request.args[1].items())), []).append(index)
        for indices in groups.values():
            options = requests[indices[0]].args[1]
            until = options.get("until") or []
            stops = [until] if isinstance(until, str) else list(until)
            eos = self.tokenizer.decode([self.eot_token_id])
            stops = [*stops, eos] if eos and eos not in stops else stops
            max_new = int(options.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
            keep = max(self.max_length - max_new, 1)
            by_length = sorted(indices, key=lambda index: -len(requests[index].args[0]))
            for first in range(0, len(by_length), self.batch_size):
                chunk = by_length[first : first + self.batch_size]
                contexts = [self.tok_encode(requests[index].args[0])[-keep:] for index in chunk]
                for index, text in zip(chunk, self._generate(contexts, stops, max_new), strict=True):
                    results[index] = text
                    self.cache_hook.add_partial("generate_until", requests[index].args, text)
        return results  # type: ignore[return-value]

    def _generate(self, contexts: list[list[int]], stops: list[str], max_new_tokens: int) -> list[str]:
        """Greedy new text after each token list (a left-padded batch), each cut before its first stop."""
        width = max(len(ids) for ids in contexts)
        input_ids = torch.full((len(contexts), width), self.pad_token_id, dtype=torch.long)  # (B, Tp)
        attention_mask = torch.zeros((len(contexts), width), dtype=torch.long)  # (B, Tp)
        for row, ids in enumerate(contexts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        output = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.pad_token_id,
            stopping_criteria=StoppingCriteriaList([_StopAtStrings(self.tokenizer, stops, width)]),
        )  # (B, Tp + N)
        texts = self.tokenizer.batch_decode(output[:, width:], skip_special_tokens=False)
        return [cut_at_stops(text, stops) for text in texts]

    def get_model_info(self) -> dict[str, Any]:
        """What lm-eval records about the model in its results' ``config``."""
        return {"model_num_parameters": sum(parameter.numel() for parameter in self.model.parameters())}
