"""What a sharded (FSDP) run needs from `GateraModule`, checked without a GPU (docs/gpu.md, "Under FSDP").

- Norm clipping goes through the sharded root's own ``clip_grad_norm_`` under FSDP1, where Lightning's FSDP
  precision plugin refuses ``torch.nn.utils.clip_grad_norm_`` (tests/test_fsdp_cpu.py checks FSDP2's
  DTensor clipping against one process).
- Weight decay is decided from the shapes before sharding: FSDP1 makes every parameter a 1-D view.
- The gates' own learning rate (``model.gate_learning_rate``) and its checks.
- The base-model fingerprint ignores the prefixes that wrappers put into module names.
- Each process's random state is saved and restored as its own.
- A reload (test, export, eval, generate) builds the base in its training dtype; sweep stages compute under
  the fit's autocast on the model's own device.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.precision import FSDPPrecision
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.fsdp import FullyShardedDataParallel

from gatera_lab import build_method
from gatera_lab.adapters.adapter_method import named_adapter_parameters
from gatera_lab.adapters.precision_policy import precision_autocast
from gatera_lab.errors import ConfigError
from gatera_lab.export.checkpoint_adapter import load_checkpoint_adapter
from gatera_lab.export.fingerprint import base_model_fingerprint
from gatera_lab.training.module import GateraModule
from gatera_lab.training.optimization import adapter_parameter_groups
from gatera_lab.training.rank_rng_states import capture_rank_rng_states, restore_rank_rng_states
from tests.conftest import make_tiny_llama
from tests.helpers.gloo_group import gloo_worker


def tiny_module(method: str = "dora_gate", **options) -> GateraModule:
    module = GateraModule(method=build_method(method, r=4, alpha=8), model="tiny", **options)
    module.attach_model(make_tiny_llama(seed=0))
    return module


class RecordingFSDPRoot(FullyShardedDataParallel):
    """Stands for the root unit FSDP1 wraps a module in (which needs a GPU to build): records its clipping."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.clipped_to: list[float] = []

    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0) -> torch.Tensor:
        self.clipped_to.append(max_norm)
        return torch.zeros(())


def attach_trainer(module: GateraModule, root: nn.Module, precision_plugin: object) -> None:
    module._trainer = types.SimpleNamespace(
        model=root, precision_plugin=precision_plugin, gradient_clip_val=1.0, gradient_clip_algorithm="norm"
    )


def test_norm_clipping_under_fsdp1_goes_through_the_sharded_root() -> None:
    module = tiny_module()
    root = RecordingFSDPRoot()
    attach_trainer(module, root, FSDPPrecision("bf16-mixed"))
    optimizer = torch.optim.AdamW(module.model.parameters())
    module.configure_gradient_clipping(optimizer, 1.0, "norm")  # Lightning's FSDP plugin would raise here
    assert root.clipped_to == [1.0]


def test_norm_clipping_on_one_device_is_lightnings() -> None:
    module = tiny_module()
    parameter = next(module.model.parameters())
    parameter.grad = torch.full_like(parameter, 10.0)
    attach_trainer(module, module.model, types.SimpleNamespace(clip_gradients=_clip_all))
    module.configure_gradient_clipping(torch.optim.AdamW([parameter]), 1.0, "norm")
    assert torch.linalg.vector_norm(parameter.grad) == pytest.approx(1.0, rel=1e-4)


def _clip_all(optimizer: torch.optim.Optimizer, clip_val: float, algorithm: object) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, clip_val)


def test_weight_decay_follows_the_shapes_recorded_before_sharding() -> None:
    """FSDP1 (use_orig_params) leaves each parameter a 1-D view of its shard: the matrices stay decayed."""
    module = tiny_module("dora_gate", weight_decay=0.1)
    for _, parameter in module.model.named_parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.reshape(-1)  # as FSDP1's sharded views
    named = [(n, p) for n, p in module.model.named_parameters() if p.requires_grad]
    decayed, undecayed = adapter_parameter_groups(named, 0.1, module.matrix_ids)
    assert decayed["weight_decay"] == 0.1 and len(decayed["params"]) == 3 * 10  # A, B and the gate weight
    assert len(undecayed["params"]) == 2 * 10  # a magnitude and a gate bias per module
    assert not adapter_parameter_groups(named, 0.1)[0]["params"][0].ndim >= 2  # by ndim now: all 1-D


def test_gate_learning_rate_puts_the_gates_in_groups_of_their_own() -> None:
    module = tiny_module("hira_gate")
    named = [(n, p) for n, p in module.model.named_parameters() if p.requires_grad]
    groups = adapter_parameter_groups(named, 0.0, module.matrix_ids, gate_learning_rate=0.05)
    gate_ids = {id(p) for n, p in named if "token_gate" in n}
    for group in groups:
        in_gate = {id(p) in gate_ids for p in group["params"]}
        assert len(in_gate) == 1
        assert group.get("lr") == (0.05 if in_gate.pop() else None)
    assert sum(len(group["params"]) for group in groups) == len(named)
    assert len(adapter_parameter_groups(named, 0.0, module.matrix_ids)) == 2  # default: as before


@pytest.mark.parametrize(
    ("method", "rate", "message"),
    [("lora", 0.01, "has no gate"), ("lora_gate", 0.0, "must be > 0"), ("lora_gate", -1.0, "must be > 0")],
)
def test_gate_learning_rate_errors_name_the_option(method: str, rate: float, message: str) -> None:
    with pytest.raises(ConfigError, match=f"model.gate_learning_rate.*{message}"):
        GateraModule(method=method, model="tiny", gate_learning_rate=rate)


def test_the_fingerprint_ignores_wrapper_prefixes() -> None:
    model = make_tiny_llama(seed=0)
    build_method("lora", r=4).apply(model)
    expected = base_model_fingerprint(model)
    layers = model.model.layers
    for index in range(len(layers)):
        holder = nn.Module()
        holder._fsdp_wrapped_module = checkpoint_wrapper(layers[index])
        layers[index] = holder
    assert any("_fsdp_wrapped_module._checkpoint_wrapped_module" in name for name, _ in model.named_modules())
    assert base_model_fingerprint(model) == expected


def test_one_process_restores_its_states_in_both_layouts() -> None:
    torch.manual_seed(3)
    saved = capture_rank_rng_states()
    expected = torch.rand(3)
    restore_rank_rng_states(saved)
    assert torch.equal(torch.rand(3), expected)
    restore_rank_rng_states(saved["per_rank"][0])  # the earlier layout: one process's states
    assert torch.equal(torch.rand(3), expected)


def rng_worker(rank: int, out_dir: str) -> None:
    """Seed per rank, save every rank's states, draw, restore, draw again: the two draws match per rank."""
    with gloo_worker(rank, out_dir, 2):
        torch.manual_seed(100 + rank)
        saved = capture_rank_rng_states()
        first = torch.rand(4)
        torch.manual_seed(0)  # as a resumed process would be seeded
        restore_rank_rng_states(saved)
        torch.save(
            {"first": first, "again": torch.rand(4), "count": len(saved["per_rank"])}, f"{out_dir}/{rank}.pt"
        )


def test_each_process_resumes_its_own_random_state(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(rng_worker, args=(str(tmp_path),), nprocs=2)
    draws = [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]
    for draw in draws:
        assert draw["count"] == 2 and torch.equal(draw["first"], draw["again"])
    assert not torch.equal(draws[0]["first"], draws[1]["first"])


def test_a_reload_builds_the_base_in_its_training_dtype(tmp_path: Path) -> None:
    """A checkpoint of a bfloat16 base reloads on a bfloat16 base with float32 adapters (not all float32)."""
    module = GateraModule(method=build_method("hira_gate", r=4), model="tiny", dtype="bfloat16")
    module.attach_model(make_tiny_llama(seed=0).to(torch.bfloat16))
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "last.ckpt")
    asked: list[torch.dtype] = []

    def load_base(name: str, dtype: torch.dtype) -> nn.Module:
        asked.append(dtype)
        return make_tiny_llama(seed=0).to(dtype)

    loaded = load_checkpoint_adapter(tmp_path / "last.ckpt", load_base=load_base)
    assert asked == [torch.bfloat16] and loaded.saved.base_dtype == "bfloat16"
    assert loaded.model.lm_head.weight.dtype == torch.bfloat16
    assert {p.dtype for _, p in named_adapter_parameters(loaded.model)} == {torch.float32}
    del checkpoint["gatera"]["base_dtype"]  # a checkpoint written before the field: the adapters' dtype
    torch.save(checkpoint, tmp_path / "old.ckpt")
    load_checkpoint_adapter(tmp_path / "old.ckpt", load_base=load_base)
    assert asked[-1] == torch.float32


@pytest.mark.parametrize(
    ("precision", "dtype"), [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16), ("32-true", None)]
)
def test_stages_compute_under_the_fits_autocast_on_the_models_device(precision: str, dtype: object) -> None:
    with precision_autocast(precision, "cpu"):
        assert torch.get_autocast_dtype("cpu") == dtype if dtype else not torch.is_autocast_enabled("cpu")
