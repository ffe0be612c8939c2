"""docs/own_study.md at tiny size: a user's method against LoRA, two seeds, through ``gatera-lab sweep`` and
``gatera-lab compare``.

The user's method is tests/helpers/row_scale_method.py (the README's "Your own method"), found in a temporary
folder of ``gatera_lab.methods`` as an installed plug-in would be (tests/conftest.py's ``dropped_method``); the
files are the page's (the methods' configs, a protocol overlay, the sweep file) in a folder of their own, with
the tiny Llama and 16 training, 8 validation and 16 test rows of the offline commonsense data.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gatera_lab.cli import main
from gatera_lab.commands.compare_command import VERDICTS


def write(path: Path, data: dict) -> Path:
    """``data`` as YAML at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_study(folder: Path, model_dir: Path, method_class_path: str) -> Path:
    """The files of docs/own_study.md, at tiny size: the methods' configs, the protocol and the sweep."""
    lora = {"class_path": "gatera_lab.methods.LoRA", "init_args": {"r": 4, "alpha": 8}}
    write(folder / "methods" / "lora.yaml", {"model": {"method": lora}})
    write(folder / "methods" / "row_scale.yaml", {"model": {"method": {"class_path": method_class_path}}})
    protocol = {  # docs/own_study.md's protocol.yaml, at tiny size
        "trainer": {"max_epochs": 1, "max_steps": 2, "log_every_n_steps": 1, "val_check_interval": 1.0},
        "model": {"model": str(model_dir), "warmup_steps": 1, "eval_protocol": "likelihood"},
        "data": {
            "class_path": "gatera_lab.datamodules.CommonsenseDataModule",
            "init_args": {
                "per_task_cap": 2,  # 16 rows: 8 held out for validation, 8 train one epoch of 2 steps
                "val_size": 8,
                "test_limit": 2,  # 16 test rows, the same for every run
                "max_length": 64,
                "batch_size": 4,
            },
        },
    }
    write(folder / "protocol.yaml", protocol)
    sweep = {
        "name": "my_study",
        "overlay": [str(folder / "protocol.yaml")],
        "method_configs": str(folder / "methods"),
        "records": str(folder / "records"),
        "runs": str(folder / "runs"),
        "launcher": "inprocess",
        "families": {
            "mine": {"methods": ["row_scale"], "learning_rates": [1e-2]},
            "lora": {"methods": ["lora"], "learning_rates": [1e-2]},
        },
        "seeds": [1, 2],
    }
    return write(folder / "sweep.yaml", sweep)


def test_my_method_against_lora_two_seeds(olmo_wheel, dropped_method, tiny_model_dir, tmp_path, capsys):
    sweep = write_study(tmp_path / "my_study", tiny_model_dir, f"{dropped_method.__module__}.RowScale")
    assert main(["sweep", "--sweep", str(sweep), "--dry-run"]) == 0
    plan = capsys.readouterr().out  # the two search runs now, the seed-2 finals once their family has a rate
    assert "row_scale_lr0.01_seed1-" in plan and "final runs of lora (seeds 1, 2): waits" in plan
    assert main(["sweep", "--sweep", str(sweep)]) == 0
    records = [json.loads(path.read_text()) for path in (tmp_path / "my_study" / "records").glob("*.json")]
    assert sorted((record["method"], record["seed"]) for record in records) == [
        ("lora", 1),
        ("lora", 2),
        ("row_scale", 1),
        ("row_scale", 2),
    ]
    runs = tmp_path / "my_study" / "runs"
    # the shell's runs/row_scale_*/test and runs/lora_*/test: the seeds in the same order on both sides
    first = sorted(map(str, runs.glob("row_scale_*/test")))
    second = sorted(map(str, runs.glob("lora_*/test")))
    assert [Path(path).parent.name.split("_seed")[1][0] for path in first + second] == ["1", "2"] * 2
    capsys.readouterr()
    out = tmp_path / "comparison.json"
    code = main(["compare", "--first", *first, "--second", *second, "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    comparison = json.loads(out.read_text())
    assert comparison["rows"] == 16 and len(comparison["mcnemar"]) == 2  # two seed pairs on the same rows
    assert comparison["verdict"] in VERDICTS and comparison["verdict"] in captured.out
