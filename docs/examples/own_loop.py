"""GateRA in a plain PyTorch loop: capture the gate logits, add the entropy term, step.

    python docs/examples/own_loop.py HuggingFaceTB/SmolLM2-135M-Instruct adapters/own-loop

The loss is the one `gatera-lab fit` trains, ``L_task + lambda * mean_{l,t} H(g_lt)``: the causal-LM loss on
the response tokens plus ``lambda`` (the method's ``entropy_weight``) times the gates' mean binary entropy over
the real (non-padding) tokens. tests/test_own_loop.py runs this file on a tiny model.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

import torch
from torch import Tensor, nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from gatera_lab import AdapterMethod, adapter_parameters, build_method, masked_gate_entropy
from gatera_lab.adapters.token_gate import capture_gate_logits
from gatera_lab.export import export_adapter

ROWS = [("What is the capital of France?", " Paris"), ("What is two plus three?", " Five")]


def train(
    model: nn.Module, method: AdapterMethod, batches: Iterable[dict[str, Tensor]], learning_rate: float = 1e-3
) -> list[float]:
    """Inject ``method`` into ``model`` and take one AdamW step per batch; returns each step's loss."""
    method.apply(model)  # freezes the base; adds the adapters (and, gated, one token gate per adapted module)
    optimizer = torch.optim.AdamW(adapter_parameters(model), lr=learning_rate)
    model.train()
    losses = []
    for batch in batches:
        with capture_gate_logits(model) as gate_logits:  # this forward's gate logits, in the autograd graph
            output = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
            )
        loss = output.loss  # mean cross-entropy over the tokens whose label is not -100
        if method.gate:  # one (B, T) tensor of logits per adapted module -> the mean H over real tokens
            entropy = masked_gate_entropy(gate_logits.latest(), batch["attention_mask"])
            loss = loss + method.entropy_weight * entropy
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def make_batch(tokenizer, rows: list[tuple[str, str]]) -> dict[str, Tensor]:
    """Prompts and responses, right-padded; the labels keep the response tokens only (-100 elsewhere)."""
    prompts = [len(tokenizer(prompt)["input_ids"]) for prompt, _ in rows]
    batch = tokenizer([prompt + response for prompt, response in rows], padding=True, return_tensors="pt")
    labels = batch["input_ids"].clone()  # (B, T)
    for row, prompt_length in enumerate(prompts):
        labels[row, :prompt_length] = -100
    labels[batch["attention_mask"] == 0] = -100
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": labels}


def main(model_name: str, out_dir: str, steps: int = 10) -> list[float]:
    """Train GateRA-HiRA on ``ROWS`` for ``steps`` steps and export the adapter to ``out_dir``."""
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenizer.padding_side = "right"
    model = AutoModelForCausalLM.from_pretrained(model_name)
    method = build_method("hira_gate", r=8, entropy_weight=0.01)
    losses = train(model, method, [make_batch(tokenizer, ROWS)] * steps)
    export_adapter(model, method, out_dir, model_name, tokenizer=tokenizer)  # `gatera-lab export`'s format
    return losses


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2]))
