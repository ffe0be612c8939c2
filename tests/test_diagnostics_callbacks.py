"""The diagnostic callbacks in a real `Trainer.fit` of `GateraModule` on the tiny model: tags, cadence, values."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gatera_lab import build_method
from gatera_lab.adapters.adapter_linear import gated_layers
from gatera_lab.diagnostics import (
    GateEntropyMonitor,
    GateStatisticsMonitor,
    GradientMaskingMonitor,
    PrefillDecodeMonitor,
    gate_figure_size_px,
)
from gatera_lab.errors import ConfigError
from gatera_lab.training.module import GateraModule
from tests.helpers.tiny_fit import fit_tiny

# one gate value per module, in adapter order: L0 q k v up down, L1 q k v up down
GATES = [0.05, 0.95, 0.5, 0.3, 0.99, 0.02, 0.6, 0.92, 0.4, 0.08]
ENTROPY_WEIGHT = 0.1


class Spy(Callback):
    """Records the hooks present after each backward and each micro-batch's loss."""

    def __init__(self) -> None:
        self.hooks: list[int] = []
        self.losses: list[float] = []

    def on_after_backward(self, trainer, pl_module) -> None:
        self.hooks.append(
            sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in pl_module.model.modules())
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


def callbacks(every: int = 2) -> list[Callback]:
    return [
        GateEntropyMonitor(every_n_steps=every),
        GateStatisticsMonitor(every_n_steps=every),
        PrefillDecodeMonitor(every_n_steps=every, probe_every_n_steps=3, max_new_tokens=4),
        GradientMaskingMonitor(every_n_steps=every),
    ]


def fit(model_dir, instruction_file, root, method: str, every: int = 2, module_kwargs=None, **method_kwargs):
    L.seed_everything(0)
    module = GateraModule(
        method=build_method(method, r=4, **method_kwargs),
        model=str(model_dir),
        warmup_steps=0,
        **(module_kwargs or {}),
    )
    module.configure_model()
    if module.gated:
        with torch.no_grad():  # gates set to known values: g = sigmoid(b) on every token
            for (_, layer), value in zip(gated_layers(module.model), GATES, strict=True):
                layer.token_gate.weight.zero_()
                layer.token_gate.bias.fill_(math.log(value / (1 - value)))
    spy = Spy()
    monitors = callbacks(every)
    trainer = fit_tiny(
        module,
        model_dir,
        instruction_file,
        max_steps=5,
        val_check_interval=5,
        logger=TensorBoardLogger(root, name="tb"),
        callbacks=[*monitors, spy],
        log_every_n_steps=1,
    )
    events = EventAccumulator(
        trainer.logger.log_dir, size_guidance={"scalars": 0, "images": 0, "histograms": 0}
    )
    events.Reload()
    return events, spy, monitors


def scalar(events, tag: str, step: int) -> float:
    return next(event.value for event in events.Scalars(tag) if event.step == step)


def test_gated_fit_writes_every_diagnostic_with_hand_computed_values(
    tiny_model_dir, instruction_file, tmp_path
):
    events, spy, monitors = fit(
        tiny_model_dir, instruction_file, tmp_path, "hira_gate", entropy_weight=ENTROPY_WEIGHT
    )
    tags = events.Tags()
    # cadence: steps 0, 2, 4 only; hooks exist on exactly those steps and are gone afterwards
    assert [event.step for event in events.Scalars("gates/all/mean")] == [0, 2, 4]
    assert [event.step for event in events.Scalars("gradmask/all/grad_norm")] == [0, 2, 4]
    assert [hooks > 0 for hooks in spy.hooks] == [True, False, True, False, True]
    assert spy.hooks[1] == spy.hooks[3] == 0
    # step 0 sees the known gate values (the optimizer has not moved them yet)
    gates = torch.tensor(GATES, dtype=torch.float64)
    approx = lambda value: pytest.approx(float(value), rel=1e-5, abs=1e-6)  # noqa: E731
    assert scalar(events, "gates/all/mean", 0) == approx(gates.mean())
    assert scalar(events, "gates/all/std", 0) == approx(gates.std(unbiased=False))
    assert scalar(events, "gates/all/frac_low", 0) == approx(0.3)  # 0.05, 0.02, 0.08
    assert scalar(events, "gates/all/frac_high", 0) == approx(0.3)  # 0.95, 0.99, 0.92
    assert scalar(events, "gates/all/near_binary", 0) == approx(0.6)
    assert scalar(events, "gates/type_q/mean", 0) == approx((0.05 + 0.02) / 2)
    assert scalar(events, "gates/type_down/frac_high", 0) == approx(0.5)
    assert scalar(events, "gates/layer_1/mean", 0) == approx(gates[5:].mean())
    assert scalar(events, "gates/dead_adapters", 0) == 3.0
    assert scalar(events, "gates/all/prompt_mean", 0) == approx(gates.mean())
    assert scalar(events, "gates/all/response_mean", 0) == approx(gates.mean())
    entropy = float(-(gates * gates.log() + (1 - gates) * (1 - gates).log()).mean())
    assert scalar(events, "gates/entropy", 0) == approx(entropy)
    assert scalar(events, "gates/entropy_term", 0) == approx(ENTROPY_WEIGHT * entropy)
    assert scalar(events, "gates/entropy_share", 0) == approx(ENTROPY_WEIGHT * entropy / spy.losses[0])
    # gradient masking: a module's tokens are all low (g < 0.1) or none is, so its share is 1 or 0
    for index, (kind, value) in enumerate(zip(["q", "k", "v", "up", "down"] * 2, GATES, strict=True)):
        prefix = f"gradmask/L{index // 5:02d}.{kind}"
        assert scalar(events, f"{prefix}/low_gate_token_share", 0) == (1.0 if value < 0.1 else 0.0)
        assert scalar(events, f"{prefix}/grad_norm", 0) > 0
        assert scalar(events, f"{prefix}/low_gate_grad_share", 0) == approx(1.0 if value < 0.1 else 0.0)
    # generation probe at steps 0 and 3 and after validation (step 5): constant gates on every pass
    assert [event.step for event in events.Scalars("gates/probe/decode_mean")] == [0, 3, 5]
    assert scalar(events, "gates/probe/prefill_mean", 0) == approx(gates.mean())
    assert scalar(events, "gates/probe/decode_mean", 0) == approx(gates.mean())
    assert set(tags["histograms"]) == {
        f"gates_hist/{g}" for g in ("all", "type_q", "type_k", "type_v", "type_up", "type_down")
    }
    assert sorted(tags["images"]) == ["gates/probe_heatmap", "gates/train_histograms"]
    assert [(image.step, image.width, image.height) for image in events.Images("gates/train_histograms")] == [
        (0, 1200, 700)
    ]
    probe = monitors[2]
    image = events.Images("gates/probe_heatmap")[0]
    n_tokens = len(probe._tokenizer(probe.prompt_text())["input_ids"]) + int(
        scalar(events, "gates/probe/generated_tokens", 0)
    )
    assert (image.width, image.height) == gate_figure_size_px(n_tokens, len(GATES))
    names = [
        "gates_step0000000.png",
        "train_gates_step0000000.png",
        "gates_step0000003.png",
        "gates_step0000005.png",
    ]
    assert [path.name for path in probe.written] == names
    assert all(path.is_file() for path in probe.written)


def test_every_diagnostic_runs_on_micro_batches_and_reads_the_first_one(
    tiny_model_dir, instruction_file, tmp_path
):
    """With ``micro_batch_tokens`` the step's forwards are micro-batches, recomputed in backward."""
    events, spy, _ = fit(
        tiny_model_dir,
        instruction_file,
        tmp_path,
        "hira_gate",
        module_kwargs={"micro_batch_tokens": 60},
        entropy_weight=ENTROPY_WEIGHT,
    )
    gates = torch.tensor(GATES, dtype=torch.float64)
    approx = lambda value: pytest.approx(float(value), rel=1e-5, abs=1e-6)  # noqa: E731
    for tag in ("gates/all/mean", "gradmask/all/grad_norm", "gates/entropy", "gates/all/prompt_mean"):
        assert [event.step for event in events.Scalars(tag)] == [0, 2, 4]
    assert scalar(events, "gates/all/mean", 0) == approx(gates.mean())
    assert scalar(events, "gates/all/response_mean", 0) == approx(gates.mean())
    for index, value in enumerate(GATES):
        kind = ["q", "k", "v", "up", "down"][index % 5]
        prefix = f"gradmask/L{index // 5:02d}.{kind}"
        assert scalar(events, f"{prefix}/low_gate_grad_share", 0) == approx(1.0 if value < 0.1 else 0.0)
    assert spy.hooks[1] == spy.hooks[3] == 0


def test_ungated_fit_logs_nothing_gate_related_and_installs_no_hook(
    tiny_model_dir, instruction_file, tmp_path
):
    events, spy, monitors = fit(tiny_model_dir, instruction_file, tmp_path, "hira", every=1)
    scalars = events.Tags()["scalars"]
    assert "train/loss" in scalars
    assert not [tag for tag in scalars if tag.startswith(("gates/", "gradmask/"))]
    assert events.Tags()["images"] == [] and events.Tags()["histograms"] == []
    assert spy.hooks == [0] * 5
    assert monitors[2].written == []


def test_bad_options_name_the_option():
    with pytest.raises(ConfigError, match="GateStatisticsMonitor.every_n_steps"):
        GateStatisticsMonitor(every_n_steps=0)
    with pytest.raises(ConfigError, match="PrefillDecodeMonitor.rows"):
        PrefillDecodeMonitor(rows="token")
    with pytest.raises(ConfigError, match="GradientMaskingMonitor.threshold"):
        GradientMaskingMonitor(threshold=0.0)


CALLBACKS_YAML = """\
trainer:
  callbacks:
    - class_path: gatera_lab.diagnostics.GateEntropyMonitor
      init_args:
        every_n_steps: 50
    - class_path: gatera_lab.diagnostics.GateStatisticsMonitor
      init_args:
        every_n_steps: 50
    - class_path: gatera_lab.diagnostics.PrefillDecodeMonitor
      init_args:
        every_n_steps: 50
        probe_every_n_steps: 500
        max_new_tokens: 16
    - class_path: gatera_lab.diagnostics.GradientMaskingMonitor
      init_args:
        every_n_steps: 200
"""


def test_callbacks_configured_from_yaml_run_under_the_cli(tiny_model_dir, instruction_file, tmp_path):
    from gatera_lab.cli import main

    snippet = tmp_path / "diagnostics.yaml"
    snippet.write_text(CALLBACKS_YAML)
    config = Path(__file__).parents[1] / "configs" / "hira_gate.yaml"
    assert main(
        ["fit", "--config", str(config), "--config", str(snippet), "--model.model", str(tiny_model_dir),
         "--model.method.init_args.r", "4", "--data", "gatera_lab.datamodules.LLMAdaptersJSONDataModule",
         "--data.train_file", str(instruction_file), "--data.val_size", "4",
         "--data.batch_size", "4", "--data.max_length", "96", "--trainer.max_steps", "2",
         "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
         "--trainer.default_root_dir", str(tmp_path)]
    ) == 0  # fmt: skip
    (log_dir,) = {path.parent for path in tmp_path.rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(log_dir))
    events.Reload()
    assert {
        "gates/all/mean",
        "gates/entropy_share",
        "gates/all/prompt_mean",
        "gradmask/all/grad_norm",
    } <= set(events.Tags()["scalars"])
    assert sorted(events.Tags()["images"]) == ["gates/probe_heatmap", "gates/train_histograms"]
    assert (log_dir / "gate_pictures" / "gates_step0000000.png").is_file()
