"""`trace_generation`: the gate of every gated module on every token of a greedy generation.

The prompt goes through the model in one pass (prefill) that fills the KV cache; then each generated token
is fed back in its own pass (decode). The gates of a token are those of the pass that has it as input: the
prompt tokens' from the prefill pass, generated token ``k``'s from decode pass ``k`` (the pass that predicts
token ``k + 1``; the last one is run only to read the gates of the last generated token). Generation is
greedy (argmax), in eval mode and without autograd; the model's train/eval flags are restored afterwards.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gatera_lab.diagnostics.gate_capture import GateCapture
from gatera_lab.diagnostics.gate_statistics import describe_module, short_name
from gatera_lab.errors import ConfigError
from gatera_lab.evaluation.choice_scoring import last_positions


@dataclass(frozen=True)
class GateTrace:
    """Gate values (modules x tokens) of a prompt followed by its greedily generated answer."""

    module_names: list[str]
    token_ids: list[int]
    tokens: list[str]
    n_prompt: int
    gates: Tensor  # (M, T) float32 on the CPU, T = n_prompt + n_generated

    @property
    def n_generated(self) -> int:
        return len(self.token_ids) - self.n_prompt

    @property
    def prefill_mean(self) -> float:
        """Mean gate over every module and prompt token."""
        return float(self.gates[:, : self.n_prompt].double().mean())

    @property
    def decode_mean(self) -> float:
        """Mean gate over every module and generated token (NaN if nothing was generated)."""
        decoded = self.gates[:, self.n_prompt :]  # (M, N)
        return float(decoded.double().mean()) if decoded.numel() else float("nan")

    def rows(self, by: str = "module") -> tuple[list[str], Tensor]:
        """Row labels and values (R, T): one row per module (``by="module"``) or the mean per layer (``"layer"``)."""
        if by == "module":
            return [short_name(name) for name in self.module_names], self.gates
        if by != "layer":
            raise ConfigError(f"option 'rows' must be 'module' or 'layer', got {by!r}")
        groups: dict[str, list[int]] = {}
        for index, name in enumerate(self.module_names):
            layer = describe_module(name).layer
            groups.setdefault(name if layer is None else f"L{layer:02d}", []).append(index)
        labels = list(groups)
        return labels, torch.stack([self.gates[indices].mean(0) for indices in groups.values()])  # (R, T)


def trace_generation(
    model: nn.Module,
    tokenizer,
    prompt: str | Tensor,
    max_new_tokens: int = 16,
    stop_at_eos: bool = True,
) -> GateTrace:
    """Generate greedily from ``prompt`` and record every gated module's gate on every token.

    Args:
        model: a Hugging Face causal LM with a gated adapter applied.
        tokenizer: its tokenizer (special tokens are added as the tokenizer does by default).
        prompt: the text to continue, or its token ids (P,) as the tokenizer made them.
        max_new_tokens: the most tokens to generate.
        stop_at_eos: stop after the tokenizer's end-of-sequence token.
    """
    if max_new_tokens < 0:
        raise ConfigError(f"option 'max_new_tokens' must be >= 0, got {max_new_tokens}")
    capture = GateCapture(model, keep_all=True)
    if not capture.layers:
        raise ConfigError("the model has no gated adapter modules: there are no gates to trace")
    device = next(model.parameters()).device
    if isinstance(prompt, Tensor):
        prompt_ids = prompt.reshape(1, -1).to(device)  # (1, P)
    else:
        prompt_ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)  # (1, P)
    if prompt_ids.shape[1] == 0:
        raise ConfigError(f"the prompt {prompt!r} has no tokens")
    modes = {module: module.training for module in model.modules()}
    generated: list[int] = []
    # only the last position's logits are needed from the prefill pass (Hugging Face models take logits_to_keep;
    # by index, as choice scoring does: an integer slices a strided view and the output layer copies its weight)
    last_only = (
        {"logits_to_keep": last_positions(prompt_ids.shape[1], 1, device)}
        if "logits_to_keep" in inspect.signature(model.forward).parameters
        else {}
    )
    model.eval()
    capture.start()
    try:
        with torch.no_grad():
            output = model(input_ids=prompt_ids, use_cache=True, **last_only)
            for _ in range(max_new_tokens):
                next_id = output.logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
                generated.append(int(next_id))
                output = model(input_ids=next_id, past_key_values=output.past_key_values, use_cache=True)
                if stop_at_eos and generated[-1] == tokenizer.eos_token_id:
                    break
    finally:
        capture.stop()
        for module, training in modes.items():
            module.training = training
    names = [name for name, _ in capture.layers]
    gates = torch.stack(
        [torch.cat([gate[0].float().cpu() for gate in capture.gates[name]]) for name in names]
    )  # (M, P + N)
    token_ids = prompt_ids[0].tolist() + generated
    return GateTrace(
        module_names=names,
        token_ids=token_ids,
        tokens=[tokenizer.decode([token_id]) for token_id in token_ids],
        n_prompt=prompt_ids.shape[1],
        gates=gates,
    )
