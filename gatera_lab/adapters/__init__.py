"""The core: the adapter method contract, the adapted layer, the token gate and what they need.

- `adapter_method`: `AdapterMethod`, the contract a method fulfils (build its layer, state its update), and
  the model-level helpers (`adapter_layers`, `adapter_parameters`, `adapter_state_dict`);
- `adapter_linear`: `AdapterLinear`, a frozen ``nn.Linear`` with one adapter and optionally a token gate;
- `token_gate`: `TokenGate` and its entropy regulariser;
- `target_matching`: which ``nn.Linear`` modules an adapter is injected into;
- `precision_policy`: which dtypes hold what;
- `gate_skip`, `gate_skip_forward`: inference-time gate skipping;
- `fused_autocast`, `dora_fused_ops`, `hira_fused_ops`: the methods' fused kernels.

The core imports only `gatera_lab.errors` beside itself ([tool.importlinter] in pyproject.toml); the package
face (`gatera_lab`) re-exports its public names.
"""
