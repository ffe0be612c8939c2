"""Adapter export and import: the PEFT format through PEFT itself, the gatera format, errors, atomicity, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import HiraConfig, LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from gatera_lab import CheckpointMismatchError, ConfigError, adapter_layers, adapter_state_dict, build_method
from gatera_lab.commands.export_command import main as export_main
from gatera_lab.export import export_adapter, export_format, gatera_format, load_adapter, peft_format
from gatera_lab.export.checkpoint_metadata import checkpoint_metadata
from gatera_lab.export.fingerprint import base_model_fingerprint
from tests.conftest import TINY_LLAMA, make_tiny_llama, randomize_adapters
from tests.helpers.char_tokenizer import make_char_tokenizer
from tests.helpers.scaled_lora import ScaledLoRA

TARGETS = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]
GATED = ["lora_gate", "dora_gate", "hira_gate"]
UNGATED = ["lora", "dora", "hira"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"]  # what the character-level tokenizer saves


def trained(name: str, seed: int = 0, **kwargs):
    """A tiny Llama with the method ``name`` applied and non-trivial adapter values."""
    model = make_tiny_llama()
    method = build_method(name, **{"r": 4, "alpha": 12, "target_modules": TARGETS, **kwargs})
    method.apply(model)
    randomize_adapters(model, seed=seed, std=0.1)
    return model, method


def logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def other_llama(**changes) -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(**{**TINY_LLAMA, **changes})).eval()


# ---------------------------------------------------------------------- the PEFT format
@pytest.mark.parametrize("name", UNGATED)
def test_peft_export_loads_in_peft_with_the_same_logits(name, tmp_path, token_batch):
    model, method = trained(name)
    expected = logits(model, token_batch)
    out = export_adapter(model, method, tmp_path / "adapter", "tiny-llama")
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == ("HIRA" if name == "hira" else "LORA")
    assert config["base_model_name_or_path"] == "tiny-llama" and config["r"] == 4

    peft_model = PeftModel.from_pretrained(make_tiny_llama(), out).eval()
    assert (logits(peft_model, token_batch) - expected).abs().max().item() <= 1e-5

    # PEFT writes back exactly the names and values we wrote
    resaved = tmp_path / "resaved"
    peft_model.save_pretrained(resaved)
    ours, theirs = (
        load_file(out / "adapter_model.safetensors"),
        load_file(resaved / "adapter_model.safetensors"),
    )
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[key], theirs[key]) for key in ours)
    suffix = {"lora": "lora_A.weight", "dora": "lora_magnitude_vector", "hira": "hira_A"}[name]
    assert f"base_model.model.model.layers.0.self_attn.q_proj.{suffix}" in ours

    reloaded = make_tiny_llama()
    rebuilt = load_adapter(reloaded, out)
    assert type(rebuilt) is type(method) and rebuilt.name == name
    assert torch.equal(logits(reloaded, token_batch), expected)


@pytest.mark.parametrize("name", UNGATED)
def test_load_adapter_reads_what_peft_saved(name, tmp_path, token_batch):
    config = (
        HiraConfig(r=4, target_modules=TARGETS)
        if name == "hira"
        else LoraConfig(r=4, lora_alpha=12, target_modules=TARGETS, use_dora=name == "dora")
    )
    peft_model = get_peft_model(make_tiny_llama(), config)
    randomize_adapters_by_name(peft_model)
    peft_model.save_pretrained(tmp_path)
    expected = logits(peft_model.eval(), token_batch)
    model = make_tiny_llama()
    method = load_adapter(model, tmp_path)
    assert method.name == name and method.r == 4
    assert name == "hira" or method.scaling == 3.0  # HiRA has no scale
    assert (logits(model, token_batch) - expected).abs().max().item() <= 1e-5


def randomize_adapters_by_name(peft_model) -> None:
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if parameter.requires_grad:
                noise = torch.randn(parameter.shape, generator=generator) * 0.1
                parameter.mul_(1 + noise) if "magnitude" in name else parameter.add_(noise)


@pytest.mark.parametrize(
    ("pattern", "written"),
    [
        (r".*layers\.1\..*(q_proj|up_proj)", r".*layers\.1\..*(q_proj|up_proj)"),
        # PEFT would also select the LlamaMLP module "model.layers.1.mlp": the names are written instead
        (r"model\.layers\.1\.mlp(\.up_proj)?", ["model.layers.1.mlp.up_proj"]),
    ],
)
def test_a_target_pattern_is_written_so_peft_selects_the_same_modules(
    pattern, written, tmp_path, token_batch
):
    model, method = trained("lora", target_modules=pattern)
    config = json.loads((export_adapter(model, method, tmp_path, "x") / "adapter_config.json").read_text())
    assert config["target_modules"] == written
    peft_model = PeftModel.from_pretrained(make_tiny_llama(), tmp_path)
    assert (logits(peft_model, token_batch) - logits(model, token_batch)).abs().max().item() <= 1e-5


# ---------------------------------------------------------------------- the gatera format
@pytest.mark.parametrize("name", GATED)
def test_gated_round_trip_gives_identical_logits(name, tmp_path, token_batch):
    model, method = trained(name, gate_bias=0.5)
    expected = logits(model, token_batch)
    out = export_adapter(model, method, tmp_path / "adapter", "tiny-llama")
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors", "gatera_adapter.json"]
    config = json.loads((out / "gatera_adapter.json").read_text())
    assert config["format"] == "gatera-adapter" and config["format_version"] == 1
    assert config["method_name"] == name and config["method_hparams"] == json.loads(
        json.dumps(method.hparams())
    )
    assert config["fingerprint"]["hidden_size"] == 32 and len(config["fingerprint"]["adapted_modules"]) == 10
    tensors = load_file(out / "adapter.safetensors")
    assert sorted(tensors) == sorted(adapter_state_dict(model))
    assert "model.layers.0.self_attn.q_proj.token_gate.weight" in tensors

    reloaded = make_tiny_llama()
    rebuilt = load_adapter(reloaded, out)
    assert rebuilt.name == name and rebuilt.hparams() == method.hparams()
    assert torch.equal(logits(reloaded, token_batch), expected)


def test_a_user_subclass_goes_to_the_gatera_format_and_comes_back(tmp_path, token_batch):
    model = make_tiny_llama()
    method = ScaledLoRA(extra_scale=2.5, r=4, target_modules=TARGETS)
    method.apply(model)
    randomize_adapters(model)
    assert export_format(method) == "gatera"
    with pytest.raises(ConfigError, match="format='peft'"):
        export_adapter(model, method, tmp_path / "peft", "x", format="peft")
    out = export_adapter(model, method, tmp_path / "adapter", "x")
    reloaded = make_tiny_llama()
    rebuilt = load_adapter(reloaded, out)
    assert type(rebuilt) is ScaledLoRA and rebuilt.extra_scale == 2.5
    assert torch.equal(logits(reloaded, token_batch), logits(model, token_batch))


def test_an_ungated_method_can_be_forced_into_the_gatera_format(tmp_path, token_batch):
    model, method = trained("dora")
    out = export_adapter(model, method, tmp_path, "x", format="gatera")
    reloaded = make_tiny_llama()
    assert load_adapter(reloaded, out).name == "dora"
    assert torch.equal(logits(reloaded, token_batch), logits(model, token_batch))


# ---------------------------------------------------------------------- mismatches and malformed folders
@pytest.mark.parametrize(
    ("changes", "field"),
    [({"hidden_size": 48}, "hidden_size"), ({"num_hidden_layers": 3}, "num_hidden_layers")],
)
def test_another_base_model_is_refused_before_it_is_touched(changes, field, tmp_path):
    model, method = trained("hira_gate")
    out = export_adapter(model, method, tmp_path, "tiny-llama")
    other = other_llama(**changes)
    with pytest.raises(CheckpointMismatchError, match=f"tiny-llama.*{field}"):
        load_adapter(other, out)
    assert not list(adapter_layers(other))


def test_a_peft_export_on_another_base_model_is_a_mismatch(tmp_path):
    model, method = trained("lora")
    out = export_adapter(model, method, tmp_path, "x")
    with pytest.raises(CheckpointMismatchError, match="adapter_model.safetensors.*shape"):
        load_adapter(other_llama(hidden_size=48), out)


def test_a_model_that_already_has_adapters_is_refused(tmp_path):
    model, method = trained("lora_gate")
    out = export_adapter(model, method, tmp_path, "x")
    with pytest.raises(ConfigError, match="without adapters"):
        load_adapter(model, out)


def edit_config(folder: Path, edit) -> None:
    path = folder / "gatera_adapter.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.pop("method_hparams"),
            "gatera_adapter.json: required field 'method_hparams' is missing",
        ),
        (lambda c: c.update(fingerprint="llama"), "gatera_adapter.json: field 'fingerprint' must be a dict"),
        (lambda c: c.update(format_version=99), "gatera_adapter.json: field 'format_version'=99 is newer"),
        (lambda c: c.update(format="other"), "gatera_adapter.json: field 'format'"),
        (lambda c: c["method_hparams"].update(rank=4), "gatera_adapter.json: field 'method_hparams'"),
        (
            lambda c: c.update(method_class_path="nowhere.Method", method_name="nothing"),
            "field 'method_class_path'='nowhere.Method' cannot be imported",
        ),
    ],
    ids=["missing-field", "wrong-type", "newer-version", "wrong-format", "bad-hparams", "unknown-class"],
)
def test_a_malformed_gatera_folder_names_the_file_and_field(edit, message, tmp_path):
    model, method = trained("lora_gate")
    out = export_adapter(model, method, tmp_path / "adapter", "x")
    edit_config(out, edit)
    fresh = make_tiny_llama()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_adapter(fresh, out)


def test_missing_files_and_broken_json_are_config_errors(tmp_path):
    model, method = trained("hira_gate")
    out = export_adapter(model, method, tmp_path / "adapter", "x")
    (out / "adapter.safetensors").unlink()
    with pytest.raises(ConfigError, match="'adapter.safetensors' is missing"):
        load_adapter(make_tiny_llama(), out)
    (out / "gatera_adapter.json").write_text("{not json")
    with pytest.raises(ConfigError, match="gatera_adapter.json: not valid JSON"):
        load_adapter(make_tiny_llama(), out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither 'gatera_adapter.json'"):
        load_adapter(make_tiny_llama(), tmp_path / "empty")
    with pytest.raises(ConfigError, match="does not exist"):
        load_adapter(make_tiny_llama(), tmp_path / "absent")


def test_a_peft_config_with_an_option_gatera_lab_lacks_is_refused(tmp_path):
    model, method = trained("lora")
    out = export_adapter(model, method, tmp_path, "x")
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**config, "use_rslora": True}))
    with pytest.raises(ConfigError, match="adapter_config.json: field 'use_rslora'"):
        load_adapter(make_tiny_llama(), out)


# ---------------------------------------------------------------------- atomic writes
def failing_save_file(*args, **kwargs):
    raise RuntimeError("disk full")


@pytest.mark.parametrize(("name", "module"), [("lora", peft_format), ("dora_gate", gatera_format)])
def test_a_failed_write_leaves_no_folder_and_no_temporary_folder(name, module, tmp_path, monkeypatch):
    model, method = trained(name)
    monkeypatch.setattr(module, "save_file", failing_save_file)
    with pytest.raises(RuntimeError, match="disk full"):
        export_adapter(model, method, tmp_path / "adapter", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_previous_folder(tmp_path, monkeypatch):
    out = export_adapter(*trained("lora"), tmp_path / "adapter", "x")
    previous = {p.name: p.read_bytes() for p in out.iterdir()}
    model, method = trained("hira_gate")
    monkeypatch.setattr(gatera_format, "save_file", failing_save_file)
    with pytest.raises(RuntimeError, match="disk full"):
        export_adapter(model, method, out, "x", overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == previous


def test_an_existing_folder_is_replaced_only_with_overwrite(tmp_path):
    model, method = trained("hira")
    out = tmp_path / "adapter"
    out.mkdir()
    export_adapter(model, method, out, "x")  # an empty folder may be filled
    with pytest.raises(ConfigError, match="not empty; pass overwrite=True"):
        export_adapter(model, method, out, "x")
    export_adapter(*trained("hira_gate"), out, "x", overwrite=True)  # an adapter export is replaced
    assert sorted(p.name for p in out.iterdir()) == ["adapter.safetensors", "gatera_adapter.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


# ---------------------------------------------------------------------- gatera-lab export
@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    """The tiny Llama with a character-level tokenizer, which exports carry beside the adapter."""
    path = tmp_path_factory.mktemp("base")
    make_tiny_llama().save_pretrained(path)
    make_char_tokenizer().save_pretrained(path)
    return path


def write_checkpoint(path: Path, base_dir: Path, name: str) -> torch.nn.Module:
    """A checkpoint in GateraModule's layout; returns the adapted model it was made from."""
    model = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    method = build_method(name, r=4, alpha=12, target_modules=TARGETS)
    method.apply(model)
    randomize_adapters(model, seed=2)
    checkpoint = {
        "epoch": 1,
        "global_step": 10,
        "state_dict": {f"model.{key}": value.clone() for key, value in adapter_state_dict(model).items()},
        "gatera": checkpoint_metadata(method, str(base_dir), base_model_fingerprint(model)),
        "hyper_parameters": {"model": str(base_dir), "method_name": name},
    }
    torch.save(checkpoint, path)
    return model


def test_export_command_writes_a_gated_adapter_that_loads_back(base_dir, tmp_path, token_batch, capsys):
    model = write_checkpoint(tmp_path / "last.ckpt", base_dir, "hira_gate")
    assert export_main(["--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "out")]) == 0
    assert f"hira_gate adapter (gatera format, base {base_dir}) to" in capsys.readouterr().out
    config = json.loads((tmp_path / "out" / "gatera_adapter.json").read_text())
    assert config["base_model"] == config["base_model_name_or_path"] == str(base_dir)
    assert "gatera_lab_base_source" not in config  # a folder, not an embedded model
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "adapter.safetensors",
        "gatera_adapter.json",
        *TOKENIZER_FILES,
    ]
    exported = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert exported("ab").input_ids == make_char_tokenizer()("ab").input_ids
    reloaded = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    load_adapter(reloaded, tmp_path / "out")
    assert torch.equal(logits(reloaded, token_batch), logits(model, token_batch))


def test_export_command_writes_peft_for_ungated_methods(base_dir, tmp_path, token_batch):
    from gatera_lab.cli import main as cli_main

    model = write_checkpoint(tmp_path / "last.ckpt", base_dir, "dora")
    assert cli_main(["export", "--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
        *TOKENIZER_FILES,
    ]
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), tmp_path / "out")
    assert (logits(peft_model.eval(), token_batch) - logits(model, token_batch)).abs().max().item() <= 1e-5


def test_export_command_reports_errors(base_dir, tmp_path, capsys):
    checkpoint_path = tmp_path / "last.ckpt"
    write_checkpoint(checkpoint_path, base_dir, "lora_gate")
    out = ["--ckpt", str(checkpoint_path), "--out", str(tmp_path / "out")]

    other_dir = tmp_path / "other_base"
    other_llama(hidden_size=48).save_pretrained(other_dir)
    assert export_main([*out, "--base-model", str(other_dir)]) == 2
    assert "hidden_size: saved 32, here 48" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    assert export_main(out) == 0
    assert export_main(out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert export_main([*out, "--overwrite", "--base-model", str(base_dir)]) == 0

    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    assert export_main(["--ckpt", str(tmp_path / "foreign.ckpt"), "--out", str(tmp_path / "x")]) == 2
    assert "not written by gatera-lab's GateraModule" in capsys.readouterr().err
    assert export_main(["--ckpt", str(tmp_path / "absent.ckpt"), "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_command_reads_a_checkpoint_written_by_gatera_module(base_dir, tmp_path, token_batch):
    from gatera_lab.training.module import GateraModule

    module = GateraModule(method=build_method("dora_gate", r=4, alpha=12), model=str(base_dir))
    module.configure_model()
    randomize_adapters(module.model, seed=4)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "module.ckpt")
    assert export_main(["--ckpt", str(tmp_path / "module.ckpt"), "--out", str(tmp_path / "out")]) == 0
    reloaded = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    assert load_adapter(reloaded, tmp_path / "out").name == "dora_gate"
    module.model.eval()
    assert torch.equal(logits(reloaded, token_batch), logits(module.model, token_batch))


def test_export_command_names_a_base_model_it_cannot_load(base_dir, tmp_path, capsys):
    write_checkpoint(tmp_path / "last.ckpt", base_dir, "hira")
    arguments = ["--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "out")]
    assert export_main([*arguments, "--base-model", str(tmp_path / "no_model_here")]) == 2
    error = capsys.readouterr().err
    assert "cannot load base model" in error and "no_model_here" in error and "--base-model" in error
    assert not (tmp_path / "out").exists()


def test_export_command_notes_a_base_without_a_tokenizer(tmp_path, capsys):
    bare = tmp_path / "bare_base"
    make_tiny_llama().save_pretrained(bare)  # weights only
    write_checkpoint(tmp_path / "last.ckpt", bare, "lora")
    assert export_main(["--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "out")]) == 0
    assert "gatera-lab export: note: the export holds no tokenizer" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
