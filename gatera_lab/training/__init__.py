"""Training: `GateraModule` (`module`), the Lightning module that fine-tunes a causal LM with one adapter
method, and the parts it is made of.

- `causal_lm_loss`, `micro_batches`, `global_token_mean`: the loss, token-bounded micro-batches, token means
  over the global batch;
- `optimization`: AdamW over the adapter parameters with its schedule;
- `adapter_checkpoint_hooks`, `rank_rng_states`: adapter-only checkpoints and every process's generators;
- `module_options`: the checks of the module's options;
- `sharded_clipping`, `sharded_evaluation_hooks`, `layer_compilation`, `host_memory`: clipping and evaluation
  under sharding, compiled decoder layers, host memory handed back to the system.
"""
