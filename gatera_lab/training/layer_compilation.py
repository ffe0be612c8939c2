"""``model.compile``: the decoder layers of an adapted model compiled with ``torch.compile``.

Each decoder layer (``model.get_decoder().layers``) is compiled in place (``nn.Module.compile``, dynamic
shapes, since batches differ in length); the layers share one compiled graph (their parameters are the
graph's inputs). Gated methods are refused with the reason: a gated layer hands its gate logits to Python
callbacks during the forward (the entropy regulariser and the diagnostics read them,
`gatera_lab.adapters.token_gate`), which ``torch.compile`` cannot trace; every gated module then recompiles
until torch's recompile limit and runs eagerly after it, slower than without compiling, which is a silent slow
path this option must not be.
"""

from __future__ import annotations

from torch import nn

from gatera_lab.errors import ConfigError


def compile_decoder_layers(model: nn.Module, gated: bool) -> int:
    """Compile every decoder layer of ``model`` in place; the number compiled.

    Raises:
        ConfigError: the method is gated, or the model has no ``get_decoder().layers``.
    """
    if gated:
        raise ConfigError(
            "option 'model.compile' does not support gated methods: a gated layer hands its gate logits to "
            "Python callbacks in its forward (the entropy term and the gate diagnostics read them), which "
            "torch.compile cannot trace, so every gated module would recompile up to torch's limit and then run "
            "eagerly, slower than without compiling; compile an ungated method, or leave 'model.compile' off"
        )
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, nn.ModuleList) or not len(layers):
        raise ConfigError(
            f"option 'model.compile' needs a model whose get_decoder() has a 'layers' list; "
            f"{type(model).__name__} has none"
        )
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)
