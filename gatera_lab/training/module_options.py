"""The checks of `GateraModule`'s options: each bad value named by its command-line option."""

from __future__ import annotations

from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.adapters.precision_policy import DTYPES
from gatera_lab.errors import ConfigError


def check_module_options(
    method: AdapterMethod,
    dtype: str,
    eval_protocol: str,
    loss_on: str,
    micro_batch_tokens: int | None,
    gate_learning_rate: float | None,
) -> None:
    """Raise `ConfigError` naming the first option (``model.<name>``) whose value cannot run."""
    if dtype not in DTYPES:
        raise ConfigError(f"option 'model.dtype' must be one of {list(DTYPES)}, got {dtype!r}")
    if eval_protocol not in ("likelihood", "generation"):
        raise ConfigError(
            f"option 'model.eval_protocol' must be 'likelihood' or 'generation', got {eval_protocol!r}"
        )
    if micro_batch_tokens is not None and micro_batch_tokens < 1:
        raise ConfigError(f"option 'model.micro_batch_tokens' must be >= 1 or null, got {micro_batch_tokens}")
    if loss_on not in ("response", "all"):
        raise ConfigError(f"option 'model.loss_on' must be 'response' or 'all', got {loss_on!r}")
    if gate_learning_rate is not None:
        if not gate_learning_rate > 0:
            raise ConfigError(
                f"option 'model.gate_learning_rate' must be > 0 or null, got {gate_learning_rate}"
            )
        if not method.gate:
            raise ConfigError(
                f"option 'model.gate_learning_rate' is set but method {method.name!r} has no gate "
                "(use a gated method, e.g. its '_gate' name, or leave the option null)"
            )
