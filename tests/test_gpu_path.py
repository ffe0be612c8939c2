"""The GPU path, checked on the CPU: the overlays parse, the precision rules hold, checkpointing changes nothing.

- Every GPU overlay (gpu_bf16, grad_checkpointing, llama32_1b, llama3_8b, fsdp) parses on top of a method
  config and sets what it says; the Llama overlays name the hub ids, link the tokenizer and load nothing;
  the fsdp overlay builds Lightning's ModelParallelStrategy (FSDP2) with every device data-parallel.
- A bfloat16 base keeps float32 adapter and gate parameters (`gatera_lab.adapters.precision_policy`): every
  method's layer outputs bfloat16 and gives float32 gradients without autocast; a ``fast_dev_run`` with
  ``--config gpu_bf16 --trainer.accelerator cpu`` trains under bf16-mixed with a finite loss.
- Unsupported precision pairs are one error line (exit code 2).
- Gradient checkpointing recomputes the decoder layers and leaves the loss and gradients unchanged; through
  the CLI (``--config grad_checkpointing``) it is on and the first step's loss equals the run without it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from gatera_lab import build_method
from gatera_lab.adapters.adapter_method import adapter_layers, adapter_parameters
from gatera_lab.adapters.precision_policy import check_precision
from gatera_lab.cli import GateraCLI, main
from gatera_lab.commands.shipped_configs import resolve_config_arguments
from gatera_lab.errors import ConfigError
from gatera_lab.registry import registry_entries
from gatera_lab.training.module import GateraModule
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.tiny_cli_args import tiny_overrides

OVERLAYS = {
    "gpu_bf16": {
        ("trainer", "accelerator"): "gpu",
        ("trainer", "precision"): "bf16-mixed",
        ("model", "dtype"): "bfloat16",
    },
    "grad_checkpointing": {("model", "gradient_checkpointing"): True},
    "llama32_1b": {("model", "model"): "meta-llama/Llama-3.2-1B"},
    "llama3_8b": {
        ("model", "model"): "meta-llama/Meta-Llama-3-8B",
        ("model", "method", "init_args", "r"): 32,
    },
    "fsdp": {
        ("trainer", "strategy", "class_path"): "lightning.pytorch.strategies.ModelParallelStrategy",
        ("trainer", "strategy", "init_args", "tensor_parallel_size"): 1,
        ("trainer", "precision"): "bf16-mixed",
        ("model", "dtype"): "bfloat16",
    },
}


def printed_config(capsys: pytest.CaptureFixture[str], *configs: str) -> dict:
    """``gatera-lab fit --config C1 --config C2 ... --print_config``, parsed."""
    arguments = [item for name in configs for item in ("--config", name)]
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *arguments, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("overlay", list(OVERLAYS))
def test_every_gpu_overlay_parses_and_sets_its_options(overlay: str, capsys) -> None:
    config = printed_config(capsys, "lora", overlay)
    for keys, expected in OVERLAYS[overlay].items():
        value = config
        for key in keys:
            value = value[key]
        assert value == expected, keys
    assert config["model"]["method"]["class_path"] == "gatera_lab.methods.LoRA"


def test_the_llama_overlays_link_the_tokenizer_and_load_nothing() -> None:
    argv = ["--config", "hira_gate", "--config", "llama3_8b", "--config", "gpu_bf16"]
    cli = GateraCLI(
        GateraModule,
        L.LightningDataModule,
        subclass_mode_data=True,
        args=[*resolve_config_arguments(argv), "--trainer.accelerator", "cpu"],
        run=False,
        auto_configure_optimizers=False,
    )
    assert cli.model.hparams.model == "meta-llama/Meta-Llama-3-8B"
    assert cli.config.data.init_args.tokenizer == "meta-llama/Meta-Llama-3-8B"
    assert cli.model.method.r == 32 and cli.model.hparams.dtype == "bfloat16"
    assert cli.trainer.precision == "bf16-mixed"
    assert cli.model.model is None  # the base model is loaded by configure_model, at fit time


def test_the_fsdp_overlay_builds_fsdp2_over_every_device() -> None:
    from jsonargparse import ArgumentParser
    from lightning.pytorch.strategies import ModelParallelStrategy, Strategy

    overlay = yaml.safe_load((Path(__file__).parents[1] / "configs" / "fsdp.yaml").read_text())
    parser = ArgumentParser()
    parser.add_argument("--strategy", type=Strategy)
    strategy = parser.instantiate_classes(parser.parse_object({"strategy": overlay["trainer"]["strategy"]}))
    strategy = strategy.strategy
    assert isinstance(strategy, ModelParallelStrategy)
    assert (
        strategy._data_parallel_size == overlay["trainer"]["devices"] and strategy._tensor_parallel_size == 1
    )
    assert strategy._save_distributed_checkpoint is False  # one adapter-only file


# ---------------------------------------------------------------- float32 adapters beside a bf16 base
METHOD_NAMES = [
    name
    for name, entry in registry_entries().items()
    if entry.method_class.__module__.startswith("gatera_lab.methods.")
]


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_bf16_base_keeps_float32_adapters_and_outputs_bf16(method: str, token_batch) -> None:
    extra = {"gate_weight_init_std": 0.3} if method.endswith("_gate") else {}
    model = make_tiny_llama().to(torch.bfloat16)
    build_method(method, r=4, **extra).apply(model)
    randomize_adapters(model, std=0.05)
    assert all(parameter.dtype == torch.float32 for parameter in adapter_parameters(model))
    model.train()
    outputs = {}
    for name, layer in adapter_layers(model):
        layer.register_forward_hook(lambda _, __, out, name=name: outputs.__setitem__(name, out.dtype))
    logits = model(**token_batch).logits  # no autocast: each adapter autocasts itself to bfloat16
    logits.float().logsumexp(-1).mean().backward()
    assert logits.dtype == torch.bfloat16 and set(outputs.values()) == {torch.bfloat16}
    for parameter in adapter_parameters(model):
        assert parameter.grad is not None and parameter.grad.dtype == torch.float32
        assert torch.isfinite(parameter.grad).all()


class DtypeProbe(L.Callback):
    """Writes the base and adapter dtypes, the precision and each training loss to ``out_file`` (JSON)."""

    def __init__(self, out_file: str) -> None:
        self.out_file = out_file
        self.record: dict = {"losses": []}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.record["precision"] = trainer.precision
        self.record["adapter_dtypes"] = sorted({str(p.dtype) for p in adapter_parameters(pl_module.model)})
        self.record["base_dtype"] = str(pl_module.model.get_input_embeddings().weight.dtype)
        self.record["checkpointing"] = pl_module.model.is_gradient_checkpointing

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.record["losses"].append(float(outputs["loss"]))
        self.record["adapter_dtypes_after_step"] = sorted(
            {str(p.dtype) for p in adapter_parameters(pl_module.model)}
        )
        Path(self.out_file).write_text(json.dumps(self.record))


def probe_fast_dev_run(model_dir: Path, instruction_file: Path, root: Path, *overlays: str) -> dict:
    """``fit --config hira_gate --config OVERLAY ... --trainer.accelerator cpu --trainer.fast_dev_run 1``;
    what `DtypeProbe` recorded."""
    root.mkdir(parents=True, exist_ok=True)
    out = root / "probe.json"
    configs = [item for overlay in overlays for item in ("--config", overlay)]
    args = [
        "fit",
        "--config",
        "hira_gate",
        *configs,
        *tiny_overrides(model_dir, instruction_file, root),
        "--trainer.accelerator",
        "cpu",
        "--trainer.callbacks",
        "tests.test_gpu_path.DtypeProbe",
        "--trainer.callbacks.out_file",
        str(out),
        "--trainer.fast_dev_run",
        "1",
    ]
    assert main(args) == 0
    return json.loads(out.read_text())


def test_fast_dev_run_bf16_base_under_bf16_mixed_on_cpu(tiny_model_dir, instruction_file, tmp_path) -> None:
    record = probe_fast_dev_run(tiny_model_dir, instruction_file, tmp_path, "gpu_bf16")
    assert record["precision"] == "bf16-mixed" and record["base_dtype"] == "torch.bfloat16"
    assert record["adapter_dtypes"] == record["adapter_dtypes_after_step"] == ["torch.float32"]
    assert len(record["losses"]) == 1 and math.isfinite(record["losses"][0])
    assert record["checkpointing"] is False


def test_fast_dev_run_with_gradient_checkpointing_has_the_same_loss(
    tiny_model_dir, instruction_file, tmp_path
) -> None:
    off = probe_fast_dev_run(tiny_model_dir, instruction_file, tmp_path / "off", "gpu_bf16")
    on = probe_fast_dev_run(
        tiny_model_dir, instruction_file, tmp_path / "on", "gpu_bf16", "grad_checkpointing"
    )
    assert (off["checkpointing"], on["checkpointing"]) == (False, True)
    assert on["losses"] == pytest.approx(off["losses"], rel=1e-3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--trainer.precision", "bf16-true"], "'trainer.precision'='bf16-true' casts every parameter"),
        (["--model.dtype", "float16"], "'model.dtype'='float16' with 'trainer.precision'='32-true'"),
    ],
    ids=["bf16-true", "fp16-without-mixed"],
)
def test_unsupported_precision_pairs_are_one_error_line(
    options, message, tiny_model_dir, instruction_file, tmp_path, capsys
) -> None:
    args = ["fit", "--config", "lora", *tiny_overrides(tiny_model_dir, instruction_file, tmp_path)]
    assert main([*args, *options, "--trainer.fast_dev_run", "1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error


def test_precision_rules() -> None:
    for dtype, precision in [
        ("float32", "32-true"),
        ("float32", "bf16-mixed"),
        ("bfloat16", "bf16-mixed"),
        ("bfloat16", "32-true"),
        ("float16", "16-mixed"),
    ]:
        check_precision(dtype, precision, fitting=True)
    check_precision("float16", "32-true", fitting=False)  # evaluation needs no loss scaling
    with pytest.warns(UserWarning, match="rounded to bfloat16"):
        check_precision("float16", "bf16-mixed", fitting=True)
    for precision in ("16-true", "64-true", "transformer-engine"):
        with pytest.raises(ConfigError, match=f"'trainer.precision'='{precision}'"):
            check_precision("bfloat16", precision, fitting=False)


# ---------------------------------------------------------------- gradient checkpointing
def test_gradient_checkpointing_recomputes_layers_and_changes_no_gradient(token_batch) -> None:
    batch = {**token_batch, "response_mask": token_batch["attention_mask"].clone()}
    batch["response_mask"][:, :4] = 0
    results = []
    for checkpointing in (False, True):
        module = GateraModule(
            method=build_method("hira_gate", r=4, gate_weight_init_std=0.3, entropy_weight=0.1),
            model="tiny",
            gradient_checkpointing=checkpointing,
        )
        module.attach_model(make_tiny_llama(seed=0))
        randomize_adapters(module.model, seed=1, std=0.1)
        module.train()
        calls = []
        _, probe = next(adapter_layers(module.model))  # inside the first (checkpointed) decoder layer
        probe.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        loss = module.compute_losses(batch)["loss"]
        loss.backward()
        gradients = {name: p.grad.clone() for name, p in module.named_parameters() if p.requires_grad}
        results.append((loss.detach(), gradients, len(calls)))
    (loss_off, grads_off, calls_off), (loss_on, grads_on, calls_on) = results
    assert (calls_off, calls_on) == (1, 2)  # the checkpointed layer's forward ran again in backward
    torch.testing.assert_close(loss_on, loss_off, rtol=1e-6, atol=1e-6)
    assert grads_on.keys() == grads_off.keys() and grads_off
    for name, gradient in grads_off.items():
        torch.testing.assert_close(grads_on[name], gradient, rtol=1e-5, atol=1e-7, msg=name)
