"""Which dtypes hold what, and which ``--model.dtype`` / ``--trainer.precision`` pairs are supported.

Rules (docs/gpu.md has the table and the commands):

- ``--model.dtype`` is the storage dtype of the frozen base model only (float32, bfloat16 or float16).
- Adapter and gate parameters are float32 master weights whatever the base dtype: `AdapterLinear` converts
  a bfloat16/float16 tensor that a method's ``init_parameters`` returns to float32 (`as_master_parameter`),
  so the optimizer updates float32 values and its state is float32.
- Compute follows autocast. Under ``--trainer.precision bf16-mixed`` (or ``16-mixed``) Lightning runs the
  step under ``torch.autocast``: ``F.linear``, ``addmm`` and the fused ops
  (`gatera_lab.adapters.fused_autocast`) cast the float32 adapter tensors and the base weights to the autocast
  dtype, and autograd returns float32 gradients to the float32 parameters. Outside autocast (``32-true``, or a
  plain forward in a script) a bfloat16/float16 input meeting float32 adapter tensors runs the adapter's
  forward under autocast to the input's dtype (`input_dtype_autocast`) and its output is cast back to that
  dtype, so a layer's output always has the base model's dtype. A float32 base without autocast computes
  everything in float32.

Supported pairs (`check_precision`, run when `GateraModule` loads its base model under a Trainer):

=================  ===============  ====================================================================
``model.dtype``    precision        result
=================  ===============  ====================================================================
float32            32-true          everything float32 (the CPU default)
float32            bf16-mixed       float32 storage, bfloat16 compute (autocast); FSDP1 needs this pair
bfloat16           bf16-mixed       the GPU recipe (configs/gpu_bf16.yaml): half the base memory
bfloat16           32-true          runs: the adapter autocasts itself to bfloat16; the base is bf16 anyway
float16            16-mixed         float16 compute with loss scaling (GradScaler)
float16            bf16-mixed       runs, with a warning: float16 weights are rounded to bfloat16 to compute
bfloat16           16-mixed         runs, with a warning: bfloat16 values above 65504 overflow in float16
float16            32-true          refused for ``fit`` (float16 gradients without loss scaling underflow);
                                    allowed for ``validate``/``test``
any                bf16-true,       refused: Lightning casts every parameter, the adapters' too, to half
                   16-true          precision, so there would be no float32 master weights
any                anything else    refused (64-true, transformer-engine, ...): not tested here
=================  ===============  ====================================================================
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from gatera_lab.errors import ConfigError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}  # model.dtype
MASTER_DTYPE = torch.float32
HALF_DTYPES = (torch.bfloat16, torch.float16)
SUPPORTED_PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def master_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype an adapter tensor is kept in beside a base of ``dtype``: float32 for a half dtype."""
    return MASTER_DTYPE if dtype in HALF_DTYPES else dtype


def as_master_parameter(parameter: nn.Parameter) -> nn.Parameter:
    """``parameter`` itself, or a float32 copy of it if it is bfloat16/float16 (same ``requires_grad``)."""
    if parameter.dtype not in HALF_DTYPES:
        return parameter
    return nn.Parameter(parameter.detach().to(MASTER_DTYPE), requires_grad=parameter.requires_grad)


def needs_input_dtype_autocast(x: Tensor, adapter_dtype: torch.dtype | None) -> bool:
    """Whether a half-precision ``x`` meets adapter tensors of another dtype with no autocast around."""
    return (
        x.dtype in HALF_DTYPES
        and adapter_dtype is not None
        and adapter_dtype != x.dtype
        and not torch.is_autocast_enabled(x.device.type)
    )


@contextlib.contextmanager
def input_dtype_autocast(x: Tensor) -> Iterator[None]:
    """Autocast to ``x``'s dtype on ``x``'s device: matmuls then cast float32 adapter tensors to it."""
    with torch.autocast(x.device.type, dtype=x.dtype):
        yield


def precision_autocast(precision: str, device_type: str) -> contextlib.AbstractContextManager:
    """The autocast that Lightning's ``--trainer.precision`` runs a step under, on ``device_type``:
    bfloat16 for ``bf16-mixed``, float16 for ``16-mixed``, none otherwise (``32-true``, ``bf16-true``)."""
    if precision.startswith("bf16-mixed"):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    if precision.startswith("16-mixed"):
        return torch.autocast(device_type, dtype=torch.float16)
    return contextlib.nullcontext()


def check_precision(dtype: str, precision: str, fitting: bool) -> None:
    """Refuse (`ConfigError`) or warn about a ``model.dtype`` / ``trainer.precision`` pair; see the module.

    Args:
        dtype: ``model.dtype``, the base model's storage dtype (float32, bfloat16 or float16).
        precision: the Trainer's precision string, e.g. ``32-true`` or ``bf16-mixed``.
        fitting: whether the Trainer is fitting (float16 gradients need loss scaling).
    """
    if precision in ("bf16-true", "16-true"):
        raise ConfigError(
            f"option 'trainer.precision'={precision!r} casts every parameter, the adapters' too, to half "
            "precision; adapters keep float32 master weights: use --model.dtype bfloat16 with "
            "--trainer.precision bf16-mixed instead (docs/gpu.md)"
        )
    if precision not in SUPPORTED_PRECISIONS:
        raise ConfigError(
            f"option 'trainer.precision'={precision!r} is not supported; use one of "
            f"{', '.join(SUPPORTED_PRECISIONS)} (docs/gpu.md)"
        )
    if dtype == "float16" and precision == "32-true" and fitting:
        raise ConfigError(
            "option 'model.dtype'='float16' with 'trainer.precision'='32-true' trains on float16 gradients "
            "without loss scaling, which underflow; use --trainer.precision 16-mixed (or bf16-mixed, or "
            "--model.dtype bfloat16)"
        )
    if dtype == "float16" and precision == "bf16-mixed":
        warnings.warn(
            "model.dtype float16 under bf16-mixed: the float16 base weights are rounded to bfloat16 to compute",
            stacklevel=2,
        )
    if dtype == "bfloat16" and precision == "16-mixed":
        warnings.warn(
            "model.dtype bfloat16 under 16-mixed: bfloat16 values beyond float16's range (65504) overflow",
            stacklevel=2,
        )
