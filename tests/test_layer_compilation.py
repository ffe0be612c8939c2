"""``model.compile``: ungated methods get compiled decoder layers; gated ones are refused with the reason."""

from __future__ import annotations

import pytest

from gatera_lab.errors import ConfigError
from gatera_lab.training.module import GateraModule
from tests.conftest import make_tiny_llama


def test_an_ungated_method_compiles_every_decoder_layer() -> None:
    module = GateraModule(method="lora", compile=True)
    module.attach_model(make_tiny_llama())
    layers = module.model.get_decoder().layers
    assert all(layer._compiled_call_impl is not None for layer in layers)


def test_a_gated_method_is_refused_with_the_reason() -> None:
    module = GateraModule(method="hira_gate", compile=True)
    with pytest.raises(ConfigError, match="'model.compile' does not support gated methods.*recompile"):
        module.attach_model(make_tiny_llama())
