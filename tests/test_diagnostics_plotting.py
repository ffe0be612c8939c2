"""The generation trace (prefill pass, then one pass per generated token) and the gate pictures."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gatera_lab import build_method
from gatera_lab.diagnostics.gate_capture import GateCapture
from gatera_lab.diagnostics.generation_trace import GateTrace, trace_generation
from gatera_lab.diagnostics.plotting import (
    figure_rgb,
    gate_figure,
    gate_figure_size_px,
    save_png,
    token_label,
)
from gatera_lab.errors import ConfigError
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.tiny_checkpoint import make_char_tokenizer


def gated_model() -> torch.nn.Module:
    model = make_tiny_llama()
    build_method("hira_gate", r=4, gate_weight_init_std=0.3).apply(model)
    randomize_adapters(model)
    return model.train()  # the trace must switch to eval and back


def test_trace_gates_equal_a_full_forward_of_prompt_and_answer():
    model, tokenizer = gated_model(), make_char_tokenizer()
    trace = trace_generation(model, tokenizer, "Is 3 even?", max_new_tokens=5, stop_at_eos=False)
    assert trace.n_prompt == len("Is 3 even?") and trace.n_generated == 5
    assert trace.gates.shape == (10, 15) and len(trace.tokens) == 15
    assert trace.tokens[:3] == ["I", "s", " "]
    assert model.training and all(module.training for module in model.modules())
    capture = GateCapture(model)
    capture.start()
    with torch.no_grad():
        model.eval()(torch.tensor([trace.token_ids]))
    capture.stop()
    full = torch.stack([gates[0] for gates in capture.first_gates().values()])  # (M, T)
    torch.testing.assert_close(trace.gates, full, rtol=1e-5, atol=1e-6)
    assert trace.prefill_mean == pytest.approx(float(full[:, :10].mean()), rel=1e-5)
    assert trace.decode_mean == pytest.approx(float(full[:, 10:].mean()), rel=1e-5)
    labels, by_layer = trace.rows("layer")
    assert labels == ["L00", "L01"]
    torch.testing.assert_close(by_layer[1], trace.gates[5:].mean(0))


def test_trace_refuses_an_ungated_model():
    model = make_tiny_llama()
    build_method("hira", r=4).apply(model)
    with pytest.raises(ConfigError, match="no gated adapter modules"):
        trace_generation(model, make_char_tokenizer(), "hi")


@pytest.mark.parametrize(("n_tokens", "n_rows"), [(6, 3), (70, 30)])
def test_figure_has_the_documented_pixel_size(tmp_path, n_tokens, n_rows):
    trace = GateTrace(
        module_names=[f"model.layers.{i}.mlp.up_proj" for i in range(n_rows)],
        token_ids=list(range(n_tokens)),
        tokens=["$x", "a b", "\n"] + ["t"] * (n_tokens - 3),
        n_prompt=n_tokens // 2,
        gates=torch.rand(n_rows, n_tokens),
    )
    width, height = gate_figure_size_px(n_tokens, n_rows)
    assert width == max(800, 220 + 16 * n_tokens) and height == max(160, 14 * n_rows) + 440
    figure = gate_figure(trace)
    path = save_png(figure, tmp_path / "sub" / "gates.png")
    assert Image.open(path).size == (width, height)
    assert figure_rgb(figure).shape == (height, width, 3)
    assert not list(path.parent.glob(".gates.png.*"))  # no temporary file left behind


def test_token_labels_are_safe_for_matplotlib():
    assert token_label("$x") == r"\$x"
    assert token_label(" the\n") == "·the\\n"
    assert token_label("") == "''"
