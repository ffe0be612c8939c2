"""The configs ship with the package (``gatera_lab.configs``) and ``--config NAME`` finds them by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gatera_lab.cli import main
from gatera_lab.commands.shipped_configs import resolve_config_arguments, shipped_configs

REPO = Path(__file__).parents[1]
NAMES = [
    "dora",
    "dora_gate",
    "fsdp",
    "gpu_bf16",
    "grad_checkpointing",
    "hira",
    "hira_gate",
    "llama32_1b",
    "llama3_8b",
    "lora",
    "lora_gate",
    "quick",
]


def test_the_installed_package_holds_every_config_of_the_repository():
    configs = shipped_configs()
    assert list(configs) == NAMES == sorted(path.stem for path in (REPO / "configs").glob("*.yaml"))
    for name, path in configs.items():
        assert path.read_bytes() == (REPO / "configs" / f"{name}.yaml").read_bytes()


def test_the_wheel_declares_the_yaml_files_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "gatera_lab.configs" in setuptools["packages"]
    assert setuptools["package-dir"]["gatera_lab.configs"] == "configs"
    assert set(setuptools["package-data"]["gatera_lab.configs"]) == {"*.yaml", "sweeps/*.yaml"}


@pytest.mark.parametrize("value", ["hira_gate", "hira_gate.yaml", "hira_gate.yml"])
def test_a_bare_name_is_the_shipped_config(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file of that name here
    shipped = str(shipped_configs()["hira_gate"])
    assert resolve_config_arguments(["fit", "--config", value, "-c", "quick"]) == [
        "fit",
        "--config",
        shipped,
        "-c",
        str(shipped_configs()["quick"]),
    ]
    assert resolve_config_arguments(["fit", f"--config={value}"]) == ["fit", f"--config={shipped}"]


def test_a_real_file_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quick.yaml").write_text("seed_everything: 7\n")
    (tmp_path / "quick").write_text("seed_everything: 8\n")
    argv = ["fit", "--config", "quick.yaml", "--config", "quick"]
    assert resolve_config_arguments(argv) == argv


@pytest.mark.parametrize("value", ["configs/missing.yaml", "{trainer: {max_epochs: 1}}", "/no/such.yaml"])
def test_paths_in_folders_and_inline_yaml_are_left_to_jsonargparse(value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config_arguments(["fit", "--config", value]) == ["fit", "--config", value]


def test_an_unknown_name_is_one_error_line_listing_the_shipped_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "hira_gatee"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("gatera-lab: error: --config 'hira_gatee'")
    assert all(name in error for name in NAMES)


def test_fit_runs_the_shipped_configs_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", "hira_gate", "--config", "quick.yaml", "--print_config"])
    assert exit_info.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    method = yaml.safe_load((REPO / "configs" / "hira_gate.yaml").read_text())
    quick = yaml.safe_load((REPO / "configs" / "quick.yaml").read_text())
    assert config["model"]["method"]["class_path"] == method["model"]["method"]["class_path"]
    assert config["trainer"]["max_steps"] == quick["trainer"]["max_steps"]


def test_configs_lists_each_shipped_name_with_its_path(capsys):
    assert main(["configs"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in rows] == NAMES
    assert all(Path(row[1]).is_file() for row in rows)
