"""Gradient masking: the measured gradient norms and low-gate shares against hand-computed gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gatera_lab import build_method
from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.adapters.token_gate import capture_gate_logits
from gatera_lab.diagnostics.gradient_masking import GradientMaskingProbe, combine, method_parameters
from tests.conftest import make_tiny_llama, randomize_adapters


def next_token_loss(model, batch) -> torch.Tensor:
    logits = model(**batch).logits  # (B, T, V)
    targets = batch["input_ids"][:, 1:].masked_fill(batch["attention_mask"][:, 1:] == 0, -100)  # (B, T-1)
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100
    )


class Recorder:
    """Keeps each gated layer's input and the gradient of its output, independently of the probe."""

    def __init__(self, model) -> None:
        self.inputs, self.outputs, self.handles = {}, {}, []
        for name, layer in gated_layers(model):
            self.handles.append(layer.register_forward_pre_hook(self._input(name)))
            self.handles.append(layer.register_forward_hook(self._output(name)))

    def _input(self, name):
        def hook(module, args):
            self.inputs.setdefault(name, args[0].detach())

        return hook

    def _output(self, name):
        def hook(module, args, output):
            if name not in self.outputs:  # the first forward only, not the probe's recomputation
                output.retain_grad()
                self.outputs[name] = output

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def hira_gradients(layer, x, upstream, weights):
    """``(dL/dB, dL/dA)`` of a gated HiRA layer from the tokens weighted by ``weights`` (B, T), by hand.

    ``y_t = W0 x_t + g_t (W0 * B A) x_t``, so ``dL/d(BA) = W0 * sum_t w_t u_t x_t^T`` with ``w_t = g_t`` for
    every token, or ``g_t`` on the low-gate tokens and 0 elsewhere for their part.
    """
    d_ba = layer.base_layer.weight * torch.einsum(
        "bto,bti->oi", weights.unsqueeze(-1) * upstream, x
    )  # (d_out, d_in)
    return d_ba @ layer.lora_A.T, layer.lora_B.T @ d_ba  # (d_out, r), (r, d_in)


def test_hira_low_gate_share_equals_the_hand_computed_gradient(token_batch):
    model = make_tiny_llama().double()  # float64: the hand-computed sums match to rounding
    build_method("hira_gate", r=4, gate_weight_init_std=0.5).apply(model)
    randomize_adapters(model, std=0.2)
    recorder = Recorder(model)
    threshold = 0.45  # splits the tokens of most modules into a low and a high part
    probe = GradientMaskingProbe(model, threshold)
    probe.start(token_batch["attention_mask"])
    next_token_loss(model, token_batch).backward()
    recorder.remove()
    shares = probe.finish()
    assert set(shares) == {name for name, _ in gated_layers(model)}
    real = token_batch["attention_mask"].bool()  # (B, T)
    split_modules = 0
    for name, layer in gated_layers(model):
        x, upstream = recorder.inputs[name], recorder.outputs[name].grad  # (B, T, d_in), (B, T, d_out)
        with torch.no_grad():
            gate = torch.sigmoid(x @ layer.token_gate.weight.T + layer.token_gate.bias).squeeze(-1)  # (B, T)
            low = (gate < threshold) & real

            d_b, d_a = hira_gradients(layer, x, upstream, gate)
            low_b, low_a = hira_gradients(layer, x, upstream, gate * low)
        torch.testing.assert_close(d_b, layer.lora_B.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(d_a, layer.lora_A.grad, rtol=1e-9, atol=1e-12)
        norm = math.sqrt(float(d_b.pow(2).sum() + d_a.pow(2).sum()))
        low_norm = math.sqrt(float(low_b.pow(2).sum() + low_a.pow(2).sum()))
        share = shares[name]
        assert share.grad_norm == pytest.approx(norm, rel=1e-9)
        assert share.low_gate_grad_norm == pytest.approx(low_norm, rel=1e-9, abs=1e-15)
        assert share.low_gate_grad_share == pytest.approx(low_norm / norm, rel=1e-9, abs=1e-15)
        assert share.real_tokens == int(real.sum()) == 17
        assert share.low_gate_tokens == int(low.sum())
        split_modules += 0 < share.low_gate_tokens < share.real_tokens
    assert split_modules >= 3  # the check covered real splits, not only all-or-nothing cases
    whole = combine(list(shares.values()))
    assert whole.grad_norm == pytest.approx(math.sqrt(sum(s.grad_norm**2 for s in shares.values())))
    assert not any(layer._forward_hooks or layer._forward_pre_hooks for _, layer in gated_layers(model))


@pytest.mark.parametrize("method", ["lora_gate", "dora_gate"])
def test_measured_gradient_equals_autograd_with_dropout_replayed(token_batch, method):
    torch.manual_seed(3)
    model = make_tiny_llama().train()
    build_method(method, r=4, dropout=0.3, gate_weight_init_std=0.5).apply(model)
    randomize_adapters(model, std=0.2)
    probe = GradientMaskingProbe(model, threshold=1.0)  # every real token is "low": G_low = G
    probe.start(token_batch["attention_mask"])
    loss = next_token_loss(model, token_batch)
    rng_before = torch.get_rng_state()
    loss.backward()
    shares = probe.finish()
    assert torch.equal(torch.get_rng_state(), rng_before)  # the replay leaves the global RNG alone
    for name, layer in gated_layers(model):
        expected = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in method_parameters(layer)))
        assert shares[name].grad_norm == pytest.approx(expected, rel=1e-4)
        # padding carries no gradient here, so the real low-gate tokens carry all of it
        assert shares[name].low_gate_grad_share == pytest.approx(1.0, rel=1e-4)
        assert shares[name].low_gate_token_share == 1.0


def test_gates_stay_untouched_by_the_measurement(token_batch):
    model = make_tiny_llama()
    build_method("hira_gate", r=4, gate_weight_init_std=0.5).apply(model)
    probe = GradientMaskingProbe(model)
    probe.start()
    with capture_gate_logits(model) as captured:
        loss = next_token_loss(model, token_batch)
    loss.backward()
    assert len(probe.finish()) == 10
    # the step's logits are one forward's, and the probe's recomputation leaves nothing on the gates
    assert [len(per_forward) for per_forward in captured.by_gate] == [1] * 10
    assert not any(layer.token_gate._logit_sinks for _, layer in gated_layers(model))
    assert probe._inputs == {} and not any(layer._forward_hooks for _, layer in gated_layers(model))


def test_activation_checkpointing_recomputation_is_ignored(token_batch):
    model = make_tiny_llama().train()
    build_method("hira_gate", r=4, gate_weight_init_std=0.5).apply(model)
    randomize_adapters(model, std=0.2)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    probe = GradientMaskingProbe(model, threshold=0.5)
    probe.start(token_batch["attention_mask"])
    next_token_loss(model, token_batch).backward()
    shares = probe.finish()
    assert len(shares) == 10
    for name, layer in gated_layers(model):
        expected = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in method_parameters(layer)))
        assert shares[name].grad_norm == pytest.approx(expected, rel=1e-4)
