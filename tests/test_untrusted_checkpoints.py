"""A checkpoint that carries a pickled callable is refused, unrun, by every command that reads one; genuine
checkpoints of a tiny fit still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from gatera_lab import adapter_state_dict, build_method
from gatera_lab.cli import main as cli_main
from gatera_lab.commands.export_command import main as export_main
from gatera_lab.commands.gates_command import main as gates_main
from gatera_lab.export import load_checkpoint_adapter
from gatera_lab.export.checkpoint_metadata import checkpoint_metadata
from gatera_lab.export.fingerprint import base_model_fingerprint
from gatera_lab.io.checkpoint_file import UnsafeCheckpointError, load_checkpoint_file
from tests.helpers.tiny_fit import train_checkpoint


def write_marker(path: str) -> str:
    """What the hostile checkpoint calls while it is unpickled: leaves a file behind."""
    Path(path).write_text("the checkpoint ran code")
    return path


class Payload:
    """Pickles as ``write_marker(marker)``: unpickling it calls the function."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (write_marker, (str(self.marker),))


@pytest.fixture
def hostile_checkpoint(tiny_model_dir, tmp_path) -> tuple[Path, Path]:
    """A checkpoint in GateraModule's layout (hira_gate on the tiny model) plus one pickled callable."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    method = build_method("hira_gate", r=4)
    method.apply(model)
    marker = tmp_path / "marker.txt"
    checkpoint = {
        "state_dict": {f"model.{key}": value for key, value in adapter_state_dict(model).items()},
        "gatera": checkpoint_metadata(method, str(tiny_model_dir), base_model_fingerprint(model)),
        "callbacks": {"Innocent": Payload(marker)},
    }
    path = tmp_path / "hostile.ckpt"
    torch.save(checkpoint, path)
    return path, marker


def test_the_hostile_checkpoint_does_run_code_when_fully_unpickled(hostile_checkpoint):
    path, marker = hostile_checkpoint
    torch.load(path, weights_only=False)  # what the commands did before: proves the fixture is hostile
    assert marker.is_file()


def test_the_loader_refuses_it_naming_file_and_callable(hostile_checkpoint):
    path, marker = hostile_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=r"hostile\.ckpt: refused to load") as raised:
        load_checkpoint_file(path)
    assert "write_marker" in str(raised.value) and "weights_only=True" in str(raised.value)
    assert not marker.exists()


def test_export_refuses_it_with_exit_code_2(hostile_checkpoint, tmp_path, capsys):
    path, marker = hostile_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=str(path)):
        load_checkpoint_adapter(path)
    out = tmp_path / "out"
    assert export_main(["--ckpt", str(path), "--out", str(out)]) == 2
    assert cli_main(["export", "--ckpt", str(path), "--out", str(out)]) == 2
    errors = capsys.readouterr().err
    assert errors.count(f"option --ckpt: {str(path)!r}: refused to load the checkpoint") == 2
    assert not marker.exists() and not out.exists()


def test_gates_refuses_it_with_exit_code_2(hostile_checkpoint, tmp_path, capsys):
    path, marker = hostile_checkpoint
    png = tmp_path / "gates.png"
    arguments = ["--ckpt", str(path), "--prompt", "hi", "--out", str(png)]
    assert gates_main(arguments) == 2
    assert cli_main(["gates", *arguments]) == 2
    errors = capsys.readouterr().err
    assert errors.count(f"option --ckpt: {str(path)!r}: refused to load the checkpoint") == 2
    assert not marker.exists() and not png.exists()


def test_a_genuine_fit_checkpoint_loads_without_hyper_parameters(tiny_model_dir, instruction_file, tmp_path):
    """A 2-step fit saved by Lightning with its optimizer state, as a sweep run writes it, reads with weights_only."""
    saved, _ = train_checkpoint(tiny_model_dir, instruction_file, tmp_path / "fit.ckpt", "lora_gate")
    content = load_checkpoint_file(saved)
    assert content["gatera"]["method_name"] == "lora_gate" and "optimizer_states" in content
    assert (
        "hyper_parameters" not in content
    )  # `gatera-lab test --ckpt_path` parses none back over its options
    assert load_checkpoint_adapter(saved, base_model=str(tiny_model_dir)).method.name == "lora_gate"
