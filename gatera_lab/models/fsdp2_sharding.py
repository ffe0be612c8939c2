"""Sharding with torch's FSDP2 (``fully_shard``), as Lightning's ``ModelParallelStrategy`` asks a module to.

`shard_model` makes every decoder layer one FSDP2 unit and the root another (the layer classes are those the
model names in ``_no_split_modules``, as Hugging Face's own sharding does). FSDP2 keeps each parameter a
``DTensor`` with its own dtype and ``requires_grad``: the frozen base (bfloat16) and the adapters (float32)
share units without sharing a flat buffer, backward forms gradients for the adapters only, and only those
are reduce-scattered (tests/test_fsdp_cpu.py counts them). Compare FSDP1 (``FSDPStrategy``), which flattens
a unit into one tensor of one dtype (docs/gpu.md).

Every forward of a sharded unit is a collective (its weights are all-gathered), so every process must run the
same forwards. Evaluation (uneven row shares, generation to different lengths) and rank-zero diagnostics do
not: `gathered_weights` all-gathers every unit once and keeps it whole, so that forwards inside it are local
(each process holds the whole model while inside, as under DDP).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import FSDPModule, fully_shard

from gatera_lab.errors import ConfigError

DATA_PARALLEL = "data_parallel"
TENSOR_PARALLEL = "tensor_parallel"


def data_parallel_mesh(mesh: DeviceMesh) -> DeviceMesh:
    """The data-parallel part of ``ModelParallelStrategy``'s mesh; tensor parallelism is refused."""
    names = mesh.mesh_dim_names or ()
    if TENSOR_PARALLEL in names and mesh[TENSOR_PARALLEL].size() > 1:
        raise ConfigError(
            f"ModelParallelStrategy with tensor_parallel_size {mesh[TENSOR_PARALLEL].size()}: gatera-lab shards "
            "with FSDP2 only; set trainer.strategy.init_args.tensor_parallel_size 1 and data_parallel_size to "
            "the number of devices (configs/fsdp.yaml)"
        )
    return mesh[DATA_PARALLEL] if DATA_PARALLEL in names else mesh


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The modules of the classes that ``model._no_split_modules`` names (Llama: ``LlamaDecoderLayer``)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [module for module in model.modules() if type(module).__name__ in names]
    if not layers:
        raise ConfigError(
            f"{type(model).__name__} names no decoder layer class in _no_split_modules: cannot shard it by layer"
        )
    return layers


def shard_model(model: nn.Module, mesh: DeviceMesh) -> nn.Module:
    """Shard ``model`` (adapters injected) over ``mesh``'s data-parallel processes: each decoder layer, then
    the root (embedding, final norm and output layer). Returns ``model``, now an `FSDPModule`."""
    dp_mesh = data_parallel_mesh(mesh)
    layers = decoder_layers(model)
    for layer in layers:
        fully_shard(layer, mesh=dp_mesh)
    fully_shard(model, mesh=dp_mesh)
    rank_zero_info(
        f"sharded with FSDP2: {len(layers)} decoder layers and the root over {dp_mesh.size()} processes"
    )
    return model


def sharded_units(model: nn.Module) -> list[FSDPModule]:
    return [module for module in model.modules() if isinstance(module, FSDPModule)]


@contextlib.contextmanager
def gathered_weights(model: nn.Module) -> Iterator[None]:
    """Inside, every FSDP2 unit of ``model`` is whole and stays whole across forwards (no collective per
    forward); on leaving, each is sharded again. Entering and leaving are collectives: every process of the
    run enters together. A model that is not sharded is left as it is."""
    units = sharded_units(model)
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        for unit in units:
            unit.set_reshard_after_forward(True, recurse=False)
            unit.reshard()
