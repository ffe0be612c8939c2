"""Sharded training on CPU: torch's FSDP2 (`torch.distributed.fsdp.fully_shard`) in two gloo processes.

Each process shards the tiny Llama with an adapter injected (each decoder layer, then the root), runs two
AdamW steps (`gatera_lab.training.optimization.build_optimizer`) on its half of each global batch with
`GateraModule`'s training objective, the gradients clipped by their global norm through the shards
(`gatera_lab.training.sharded_clipping`), and gathers the adapter parameters: they equal one process's two
clipped steps on the whole global batches (rtol 1e-4), for LoRA and gated HiRA. The gradient elements that
FSDP2 reduce-scatters each step are counted: exactly the adapters' (the frozen base's are never formed). A
third case shards a bfloat16 base beside float32 adapters in the same units (what FSDP1 refuses, docs/gpu.md):
it trains, the adapters stay float32, and each tensor's update points the way one process's does (cosine >=
0.99).

Lightning's FSDPStrategy (FSDP1, configs/fsdp.yaml) cannot run here: FSDP1 raises "FSDP needs a non-CPU
accelerator device, but no accelerator device is detected." on a machine without a GPU.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import Tensor
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

from gatera_lab import build_method
from gatera_lab.adapters.adapter_method import adapter_layers
from gatera_lab.training.module import GateraModule
from gatera_lab.training.optimization import build_optimizer
from gatera_lab.training.sharded_clipping import sharded_gradient_clipper
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.gloo_group import gloo_worker, padded_batch, shard, spawn_workers

WORLD_SIZE = 2
STEPS = 2
SPAWN_TIMEOUT_SECONDS = 300
CASES = {  # name: (method, its options, base dtype)
    "lora": ("lora", {}, torch.float32),
    "hira_gate": ("hira_gate", {"entropy_weight": 0.3, "gate_weight_init_std": 0.5}, torch.float32),
    "hira_gate_bf16_base": ("hira_gate", {"gate_weight_init_std": 0.5}, torch.bfloat16),
}
# bfloat16 rounds each rank's half-batch matmuls differently from the whole batch's, and AdamW's first steps
# (update ~ lr * g / |g|) turn that into lr-sized differences where a gradient is near 0: the bf16 case is
# checked by the direction of each tensor's update (cosine; measured 0.9997 at worst), not elementwise.
MIN_BF16_UPDATE_COSINE = 0.99
REDUCED_KEY = "gradient elements reduced per step"
MAX_NORM = 0.002  # below every case's gradient norm, so that clipping rescales every step


def global_batch(step: int) -> dict[str, Tensor]:
    """A different batch per step (`padded_batch`)."""
    return padded_batch(seed=100 + step)


def make_module(case: str) -> GateraModule:
    """The tiny Llama in the case's dtype with random adapter values (the same on every process)."""
    method, options, dtype = CASES[case]
    module = GateraModule(method=build_method(method, r=4, alpha=8, **options), model="tiny")
    module.attach_model(make_tiny_llama(seed=0).to(dtype))
    randomize_adapters(module.model, seed=1, std=0.2)
    return module.train()


def adapter_values(module: GateraModule) -> dict[str, Tensor]:
    """Every adapter tensor by full name, gathered whole (``full_tensor``: a collective under FSDP2)."""
    values = {}
    for layer_name, layer in adapter_layers(module.model):
        for name, parameter in layer.named_adapter_parameters():
            value = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
            values[f"{layer_name}.{name}"] = value.detach().clone()
    return values


def train(module: GateraModule, batches: list[dict[str, Tensor]]) -> None:
    """``STEPS`` AdamW steps of `GateraModule`'s training objective, one batch each, with the gradients
    clipped to a norm of `MAX_NORM` (the shards' global norm when sharded: `sharded_gradient_clipper`)."""
    named = [(name, parameter) for name, parameter in module.named_parameters() if parameter.requires_grad]
    parameters = [parameter for _, parameter in named]
    optimizer, _ = build_optimizer(named, 1e-2, 0.01, 0, STEPS, "constant")
    clip = sharded_gradient_clipper(module.model, parameters) or functools.partial(
        torch.nn.utils.clip_grad_norm_, parameters
    )
    for batch in batches:
        module.training_objective(batch, module.compute_losses(batch)).backward()
        norm = clip(MAX_NORM)
        assert norm > MAX_NORM, (
            f"the gradient norm {float(norm):.3f} is not clipped: raise the test's gradients"
        )
        optimizer.step()
        optimizer.zero_grad()


def fsdp_worker(rank: int, out_dir: str) -> None:
    """One of two gloo processes: shard each case with fully_shard, train on this rank's halves, save."""
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.fsdp._fully_shard import _fsdp_param_group

    with gloo_worker(rank, out_dir, WORLD_SIZE):  # leaves as tests/test_ddp.py's worker (no destructors)
        reduced: list[int] = []  # gradient elements handed to each reduce-scatter, as FSDP2 calls it
        reduce = _fsdp_param_group.foreach_reduce

        def counting_reduce(fsdp_params, unsharded_grads, *args, **kwargs):  # noqa: ANN001, ANN202
            reduced.append(sum(gradient.numel() for gradient in unsharded_grads))
            return reduce(fsdp_params, unsharded_grads, *args, **kwargs)

        _fsdp_param_group.foreach_reduce = counting_reduce
        for case in CASES:
            module = make_module(case)
            for layer in module.model.modules():
                if isinstance(layer, LlamaDecoderLayer):
                    fully_shard(layer)
            fully_shard(module.model)
            reduced.clear()
            train(module, [shard(global_batch(step), rank, WORLD_SIZE) for step in range(STEPS)])
            values = adapter_values(module)
            if rank == 0:
                torch.save(
                    {**values, REDUCED_KEY: torch.tensor(sum(reduced) / STEPS)}, Path(out_dir) / f"{case}.pt"
                )


@pytest.fixture(scope="module")
def sharded_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The adapter tensors after `fsdp_worker`'s two sharded steps, per case (spawned once)."""
    try:
        from torch.distributed.fsdp import fully_shard  # noqa: F401
    except ImportError as error:
        pytest.skip(f"torch {torch.__version__} has no torch.distributed.fsdp.fully_shard ({error})")
    out_dir = tmp_path_factory.mktemp("fsdp")
    spawn_workers(fsdp_worker, out_dir, "two FSDP", WORLD_SIZE, SPAWN_TIMEOUT_SECONDS)
    return out_dir


@pytest.mark.parametrize("case", list(CASES))
def test_fsdp2_steps_equal_one_process_on_the_global_batch(sharded_runs: Path, case: str) -> None:
    module = make_module(case)
    before = adapter_values(module)
    train(module, [global_batch(step) for step in range(STEPS)])
    expected = adapter_values(module)
    got = torch.load(sharded_runs / f"{case}.pt")
    reduced = got.pop(REDUCED_KEY)  # the frozen base's gradients are neither formed nor communicated
    assert (
        reduced
        == sum(value.numel() for value in expected.values())
        < sum(p.numel() for p in module.parameters())
    )
    assert got.keys() == expected.keys() and expected
    for name, value in expected.items():
        assert got[name].dtype == value.dtype == torch.float32, name
        update = (value - before[name]).flatten()
        assert update.abs().max() > 0, f"{name} did not move"
        if CASES[case][2] == torch.float32:
            torch.testing.assert_close(got[name], value, rtol=1e-4, atol=1e-6, msg=name)
        else:
            sharded_update = (got[name] - before[name]).flatten()
            cosine = torch.nn.functional.cosine_similarity(sharded_update, update, dim=0)
            assert cosine >= MIN_BF16_UPDATE_COSINE, f"{name}: cosine {float(cosine):.4f}"
