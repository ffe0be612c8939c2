"""Numerical parity with HF PEFT's LoRA, DoRA and HiRA on identical base and adapter weights.

Both models start from the same tiny Llama; gatera-lab's adapter gets random non-trivial values and PEFT's
parameters receive copies of them. Logits and the gradients of every adapter tensor must agree to 1e-5
(fp32, dropout 0). A gated method with its gates forced to 1 must agree with PEFT's ungated method too.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
from peft import HiraConfig, LoraConfig, get_peft_model

from gatera_lab import adapter_layers, build_method
from gatera_lab.adapters.token_gate import forced_gate_value
from tests.conftest import make_tiny_llama, randomize_adapters

TARGETS = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
R, ALPHA = 4, 12.0  # scaling 3, so a forgotten or doubled scale shows
TOLERANCE = 1e-5


# our parameter name -> the parameter's name inside a live PEFT layer (adapter "default")
PEFT_PARAMETER_NAMES = {
    "lora": {"lora_A": "lora_A.default.weight", "lora_B": "lora_B.default.weight"},
    "dora": {
        "lora_A": "lora_A.default.weight",
        "lora_B": "lora_B.default.weight",
        "lora_magnitude": "lora_magnitude_vector.default.weight",
    },
    "hira": {"lora_A": "hira_A.default", "lora_B": "hira_B.default"},
}


def peft_config(method: str):
    if method == "hira":
        return HiraConfig(r=R, target_modules=TARGETS, hira_dropout=0.0)
    return LoraConfig(
        r=R, lora_alpha=ALPHA, target_modules=TARGETS, lora_dropout=0.0, use_dora=method == "dora"
    )


def paired_models(method: str, gated: bool = False):
    """gatera-lab's model and PEFT's, and the list of (ours, theirs) parameter pairs."""
    ours = make_tiny_llama()
    name = f"{method}_gate" if gated else method
    build_method(name, r=R, alpha=ALPHA, target_modules=TARGETS).apply(ours)
    randomize_adapters(ours, seed=3, std=0.1)
    theirs = get_peft_model(make_tiny_llama(), peft_config(method))
    peft_parameters = dict(theirs.named_parameters())
    pairs = []
    with torch.no_grad():
        for layer_name, layer in adapter_layers(ours):
            for our_name, peft_name in PEFT_PARAMETER_NAMES[method].items():
                ours_parameter = getattr(layer, our_name)
                theirs_parameter = peft_parameters[f"base_model.model.{layer_name}.{peft_name}"]
                theirs_parameter.copy_(ours_parameter)
                pairs.append((f"{layer_name}.{our_name}", ours_parameter, theirs_parameter))
    assert len(pairs) == 2 * len(TARGETS) * len(PEFT_PARAMETER_NAMES[method])
    return ours, theirs, pairs


def loss_of(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross entropy, so the gradient flows through every position."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten())


@pytest.mark.parametrize("gated", [False, True], ids=["ungated", "gate_forced_to_1"])
@pytest.mark.parametrize("method", ["lora", "dora", "hira"])
def test_logits_and_gradients_match_peft(method, gated, token_batch):
    ours, theirs, pairs = paired_models(method, gated)
    with forced_gate_value(ours, 1.0) if gated else contextlib.nullcontext():
        our_logits = ours(**token_batch).logits  # (B, T, V)
    their_logits = theirs(**token_batch).logits  # (B, T, V)
    base_logits = make_tiny_llama()(**token_batch).logits
    assert (our_logits - base_logits).abs().max() > 1e-3, "the adapter must change the output"
    assert (our_logits - their_logits).abs().max().item() <= TOLERANCE

    loss_of(our_logits, token_batch["input_ids"]).backward()
    loss_of(their_logits, token_batch["input_ids"]).backward()
    for name, our_parameter, their_parameter in pairs:
        assert our_parameter.grad is not None and their_parameter.grad is not None, name
        assert our_parameter.grad.abs().max() > 0, name
        difference = (our_parameter.grad - their_parameter.grad).abs().max().item()
        scale = their_parameter.grad.abs().max().item()
        assert difference <= TOLERANCE, f"{name}: gradient differs by {difference:.2e}"
        assert difference <= 1e-4 * scale, f"{name}: gradient differs by {difference:.2e} of {scale:.2e}"
