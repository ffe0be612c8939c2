"""A checkpoint loads only with the options that define its adapter's function; unregistered subclasses
carry their own method name."""

from __future__ import annotations

import lightning as L
import pytest

from gatera_lab import CheckpointMismatchError, ConfigError, build_method
from gatera_lab.export.checkpoint_metadata import check_checkpoint_matches, checkpoint_metadata
from gatera_lab.export.saved_adapter import SavedAdapter
from gatera_lab.methods.lora import LoRA
from gatera_lab.training.module import GateraModule
from tests.helpers.scaled_lora import ScaledLoRA
from tests.helpers.tiny_fit import fit_tiny


class WarmStartLoRA(ScaledLoRA):
    """Declares an initialisation-only option of its own."""

    training_only_options = LoRA.training_only_options | {"init_seed"}

    def __init__(self, init_seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.init_seed = init_seed


class RegisteredLoRAChild(LoRA):
    """A subclass registered under its own names (the attributes `register_method` sets; not added to the
    process-wide registry, which other tests are parametrised over)."""

    registry_name = "test_registered_lora_child"
    registry_gated_name = "test_registered_lora_child_gate"


FINGERPRINT = {"architecture": "tiny"}


def check(saved_method, current_method) -> None:
    """Load a checkpoint of ``saved_method`` into ``current_method`` (same tensors, same base model)."""
    check_checkpoint_matches(
        checkpoint_metadata(saved_method, "base", FINGERPRINT),
        checkpoint_metadata(current_method, "base", FINGERPRINT),
        {"model.x.lora_A"},
        {"model.x.lora_A"},
        training_only=current_method.training_only_options,
    )


def test_another_alpha_is_refused_naming_both_values():
    with pytest.raises(CheckpointMismatchError, match=r"option alpha=64\.0, but this run uses alpha=16\.0"):
        check(build_method("lora", r=4, alpha=64), build_method("lora", r=4, alpha=16))
    with pytest.raises(CheckpointMismatchError, match=r"option r=4, but this run uses r=8"):
        check(build_method("dora", r=4), build_method("dora", r=8))
    with pytest.raises(
        CheckpointMismatchError, match=r"target_modules=\['q_proj'\].*target_modules='.\*v_proj'"
    ):
        check(
            build_method("hira", target_modules=["q_proj"]), build_method("hira", target_modules=".*v_proj")
        )


def test_training_only_options_may_differ():
    saved = build_method("hira_gate", r=4, alpha=8, dropout=0.0, gate_bias=0.0, entropy_weight=0.0)
    current = build_method(
        "hira_gate", r=4, alpha=8, dropout=0.1, gate_bias=2.0, gate_weight_init_std=0.3, entropy_weight=0.05
    )
    check(saved, current)
    check(
        build_method("lora", target_modules=("q_proj", "v_proj")),
        build_method("lora", target_modules=["q_proj", "v_proj"]),
    )


def test_a_user_subclass_option_is_compared_unless_declared_training_only():
    with pytest.raises(
        CheckpointMismatchError, match=r"extra_scale=2\.0, but this run uses extra_scale=3\.0"
    ):
        check(ScaledLoRA(extra_scale=2.0), ScaledLoRA(extra_scale=3.0))
    check(WarmStartLoRA(init_seed=1), WarmStartLoRA(init_seed=2))
    with pytest.raises(CheckpointMismatchError, match="extra_scale"):
        check(WarmStartLoRA(init_seed=1, extra_scale=2.0), WarmStartLoRA(init_seed=1))


def test_an_option_only_one_side_records_is_a_mismatch():
    saved = checkpoint_metadata(ScaledLoRA(), "base", FINGERPRINT)
    del saved["method_hparams"]["extra_scale"]  # e.g. written before the option existed
    with pytest.raises(
        CheckpointMismatchError, match=r"extra_scale=<absent>, but this run uses extra_scale=1\.0"
    ):
        check_checkpoint_matches(saved, checkpoint_metadata(ScaledLoRA(), "base", FINGERPRINT), set(), set())


def fit(model_dir, instruction_file, root, method, ckpt_path=None) -> None:
    """One step saved as ``root/last.ckpt``, or, from ``ckpt_path``, a second step."""
    L.seed_everything(0)
    module = GateraModule(method=method, model=str(model_dir), learning_rate=0.05, warmup_steps=0)
    steps = 2 if ckpt_path else 1
    trainer = fit_tiny(
        module,
        model_dir,
        instruction_file,
        ckpt_path,
        max_steps=steps,
        limit_val_batches=0,
        default_root_dir=root,
    )
    if ckpt_path is None:
        trainer.save_checkpoint(root / "last.ckpt")


def test_resuming_with_another_alpha_is_refused(tiny_model_dir, instruction_file, tmp_path):
    fit(tiny_model_dir, instruction_file, tmp_path, build_method("lora_gate", r=4, alpha=8))
    checkpoint = tmp_path / "last.ckpt"
    with pytest.raises(CheckpointMismatchError, match=r"alpha=8\.0, but this run uses alpha=32\.0"):
        fit(
            tiny_model_dir,
            instruction_file,
            tmp_path / "a",
            build_method("lora_gate", r=4, alpha=32),
            checkpoint,
        )
    fit(
        tiny_model_dir,
        instruction_file,
        tmp_path / "b",
        build_method("lora_gate", r=4, alpha=8, dropout=0.1, entropy_weight=0.01),
        checkpoint,
    )  # training-only options may change on resume


def test_the_test_path_compares_options_too(tiny_model_dir):
    """``gatera-lab test --ckpt_path`` restores through ``GateraModule.on_load_checkpoint``."""
    saved = GateraModule(method=build_method("dora_gate", r=4, alpha=8), model=str(tiny_model_dir))
    saved.configure_model()
    checkpoint = {"state_dict": saved.state_dict()}
    saved.on_save_checkpoint(checkpoint)
    other = GateraModule(method=build_method("dora_gate", r=4, alpha=4), model=str(tiny_model_dir))
    other.configure_model()
    with pytest.raises(CheckpointMismatchError, match=r"alpha=8\.0, but this run uses alpha=4\.0"):
        other.on_load_checkpoint(checkpoint)


def test_an_unregistered_subclass_is_named_by_its_class():
    assert ScaledLoRA().name == "ScaledLoRA" and ScaledLoRA(gate=True).name == "ScaledLoRA+gate"
    assert LoRA().name == "lora" and LoRA(gate=True).name == "lora_gate"
    assert RegisteredLoRAChild().name == "test_registered_lora_child"
    assert RegisteredLoRAChild(gate=True).name == "test_registered_lora_child_gate"


def test_a_lost_subclass_is_not_rebuilt_as_plain_lora():
    """The saved name falls back to the registry when the class path is gone: it must not say ``lora``."""
    metadata = checkpoint_metadata(ScaledLoRA(extra_scale=2.0), "base", FINGERPRINT)
    metadata["method_class_path"] = "a_module_that_is_gone.ScaledLoRA"
    with pytest.raises(ConfigError, match="'ScaledLoRA' is not registered"):
        SavedAdapter.from_dict(metadata, "saved").build_method("saved")
