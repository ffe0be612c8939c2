"""gatera-lab: token-aware parameter-efficient fine-tuning of causal language models."""

from gatera_lab.adapters.adapter_linear import AdapterLinear
from gatera_lab.adapters.adapter_method import (
    AdapterMethod,
    AdapterSummary,
    adapter_layers,
    adapter_parameters,
    adapter_state_dict,
    set_adapters_enabled,
)
from gatera_lab.adapters.token_gate import TokenGate, masked_gate_entropy
from gatera_lab.errors import (
    CheckpointMismatchError,
    ConfigError,
    GateraError,
    MergeError,
    UnknownMethodError,
)
from gatera_lab.registry import (
    available_methods,
    build_method,
    discover_methods,
    register_method,
    registry_entries,
)

__all__ = [
    "AdapterLinear",
    "AdapterMethod",
    "AdapterSummary",
    "CheckpointMismatchError",
    "ConfigError",
    "GateraError",
    "MergeError",
    "TokenGate",
    "UnknownMethodError",
    "adapter_layers",
    "adapter_parameters",
    "adapter_state_dict",
    "available_methods",
    "build_method",
    "discover_methods",
    "masked_gate_entropy",
    "register_method",
    "registry_entries",
    "set_adapters_enabled",
]
