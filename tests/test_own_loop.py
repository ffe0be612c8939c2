"""docs/examples/own_loop.py (GateRA in a plain PyTorch loop) runs, lowers its loss and saves a loadable adapter."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gatera_lab.adapters.token_gate import token_gates
from gatera_lab.export import load_adapter

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "own_loop.py"


def load_example():
    spec = importlib.util.spec_from_file_location("own_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_own_loop_example_trains_and_exports(tiny_model_dir, tmp_path):
    example = load_example()
    losses = example.main(str(tiny_model_dir), str(tmp_path / "adapter"), steps=4)
    assert len(losses) == 4 and losses[-1] < losses[0]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    method = load_adapter(model, tmp_path / "adapter")
    assert method.name == "hira_gate" and len(token_gates(model)) == 2 * 5
    assert any(gate.weight.abs().sum() > 0 for gate in token_gates(model))


def test_the_own_loop_adds_lambda_times_the_gate_entropy(tiny_model_dir):
    """With lambda = 0 the first step's loss is the task loss; with lambda = 1 it adds the mean entropy."""
    example = load_example()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    batch = example.make_batch(tokenizer, example.ROWS)
    first = {}
    for weight in (0.0, 1.0):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        torch.manual_seed(0)
        method = example.build_method("lora_gate", r=4, entropy_weight=weight, gate_weight_init_std=0.0)
        first[weight] = example.train(model, method, [batch])[0]
    # every gate starts at sigmoid(0) = 0.5, whose entropy is log 2
    assert abs(first[1.0] - first[0.0] - torch.log(torch.tensor(2.0)).item()) < 1e-5
