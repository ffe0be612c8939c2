"""``--overwrite`` replaces an export (adapter or merged model, with its tokenizer) and nothing else: a run
folder or a home directory is refused."""

from __future__ import annotations

import pytest

from gatera_lab import ConfigError, build_method
from gatera_lab.cli import main as cli_main
from gatera_lab.export import export_adapter, export_merged_model
from tests.conftest import make_tiny_llama
from tests.helpers.char_tokenizer import make_char_tokenizer


def trained(name: str):
    model = make_tiny_llama()
    method = build_method(name, r=4, alpha=8, target_modules=["q_proj", "v_proj"])
    method.apply(model)
    return model, method


def snapshot(folder) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


FOREIGN_FOLDERS = {
    "run folder": {"config.yaml": "model: x\n", "checkpoints/last.ckpt": "weights"},
    "home directory": {".bashrc": "alias ll='ls -l'\n", "Documents/thesis.tex": "\\begin{document}"},
}


@pytest.mark.parametrize("kind", FOREIGN_FOLDERS)
def test_overwrite_refuses_a_folder_that_is_not_an_adapter_export(kind, tmp_path):
    out = tmp_path / "out"
    for name, text in FOREIGN_FOLDERS[kind].items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = snapshot(out)
    with pytest.raises(ConfigError) as refusal:
        export_adapter(*trained("lora"), out, "x", overwrite=True)
    message = str(refusal.value)
    assert f"refusing to replace folder {str(out)!r} (--overwrite): it is not an adapter export" in message
    assert "has none of 'gatera_adapter.json', 'adapter_config.json', 'gatera_merge.json'" in message
    assert snapshot(out) == before
    assert [path.name for path in tmp_path.iterdir()] == ["out"]


def test_overwrite_refuses_an_adapter_export_with_other_files_beside_it(tmp_path):
    out = export_adapter(*trained("lora"), tmp_path / "out", "x")
    (out / "notes.md").write_text("my results")
    (out / "plots").mkdir()
    before = snapshot(out)
    with pytest.raises(ConfigError, match=r"besides an adapter export it holds 'notes.md', 'plots', which"):
        export_adapter(*trained("hira_gate"), out, "x", overwrite=True)
    assert snapshot(out) == before


def test_overwrite_replaces_an_adapter_export_of_either_format(tmp_path):
    out = export_adapter(*trained("lora"), tmp_path / "out", "x")  # PEFT format
    export_adapter(*trained("hira_gate"), out, "x", overwrite=True)
    assert sorted(path.name for path in out.iterdir()) == ["adapter.safetensors", "gatera_adapter.json"]
    export_adapter(*trained("dora"), out, "x", overwrite=True)  # the gatera format replaced in turn
    assert sorted(path.name for path in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]


def test_overwrite_replaces_exports_with_tokenizer_files_and_merged_models(tmp_path):
    out = export_adapter(*trained("lora"), tmp_path / "out", "x", tokenizer=make_char_tokenizer())
    assert {"tokenizer.json", "tokenizer_config.json"} <= {path.name for path in out.iterdir()}
    export_merged_model(*trained("dora"), out, "x", overwrite=True, tokenizer=make_char_tokenizer())
    assert "gatera_merge.json" in {path.name for path in out.iterdir()}
    export_adapter(*trained("hira_gate"), out, "x", overwrite=True)  # a merged model is an export too
    assert sorted(path.name for path in out.iterdir()) == ["adapter.safetensors", "gatera_adapter.json"]


@pytest.mark.parametrize("stray", ["README.md", "tokenizer.json/"])
def test_overwrite_refuses_an_export_with_a_stray_entry_beside_its_tokenizer(stray, tmp_path):
    """Only the tokenizer's own files pass, and only as files: a folder named like one is not replaced."""
    out = export_adapter(*trained("lora"), tmp_path / "out", "x")
    (out / "tokenizer_config.json").write_text("{}")
    (out / stray.rstrip("/")).mkdir() if stray.endswith("/") else (out / stray).write_text("mine")
    with pytest.raises(ConfigError, match=f"besides an adapter export it holds {stray.rstrip('/')!r}"):
        export_merged_model(*trained("lora"), out, "x", overwrite=True)


def test_the_export_command_refuses_a_run_folder_with_exit_code_2(tiny_model_dir, tmp_path, capsys):
    from tests.test_export import write_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    write_checkpoint(run / "checkpoints" / "last.ckpt", tiny_model_dir, "hira")
    before = snapshot(run)
    arguments = ["export", "--ckpt", str(run / "checkpoints" / "last.ckpt"), "--out", str(run), "--overwrite"]
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err
    assert f"gatera-lab export: error: refusing to replace folder {str(run)!r}" in error
    assert "not an adapter export" in error and "'checkpoints'" in error and "Traceback" not in error
    assert snapshot(run) == before
