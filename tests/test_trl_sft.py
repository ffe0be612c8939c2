"""`GateraSFTTrainer`: TRL's SFTTrainer trains a gatera-lab adapter and saves one that reloads exactly."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gatera_lab import adapter_state_dict, build_method
from gatera_lab.export import load_adapter

trl = pytest.importorskip("trl", reason="the trl extra is not installed")
datasets = pytest.importorskip("datasets")


def sft_rows() -> datasets.Dataset:
    """Eight prompt-completion rows (TRL computes the loss on the completions only)."""
    prompts = [f"Is {index} even? Answer:" for index in range(8)]
    completions = [" true" if index % 2 == 0 else " false" for index in range(8)]
    return datasets.Dataset.from_dict({"prompt": prompts, "completion": completions})


@pytest.mark.parametrize("method", ["hira_gate", "lora"])
def test_sft_trainer_trains_two_steps_and_saves_an_adapter_that_reloads(method, tiny_model_dir, tmp_path):
    from gatera_lab.integrations import GateraSFTTrainer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    gated = method.endswith("_gate")
    kwargs = {"entropy_weight": 0.1, "gate_weight_init_std": 0.1} if gated else {}
    build_method(method, r=4, alpha=8, **kwargs).apply(model)
    before = {key: value.clone() for key, value in adapter_state_dict(model).items()}
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=4,
        max_steps=2,
        learning_rate=1e-2,
        max_length=32,
        logging_steps=1,
        save_strategy="no",
        report_to=["tensorboard"],
        use_cpu=True,
        bf16=False,  # SFTConfig's default; compared here in float32
        disable_tqdm=True,
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = GateraSFTTrainer(model=model, args=args, train_dataset=sft_rows(), processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 2
    changed = [key for key, value in adapter_state_dict(model).items() if not torch.equal(value, before[key])]
    assert any(key.endswith("lora_A") for key in changed)  # B starts at 0: A moves from the second step
    if gated:
        assert any(key.endswith("token_gate.weight") for key in changed)
        assert all("gate_entropy" in entry for entry in trainer.state.log_history if "loss" in entry)
        assert tensorboard_tags(tmp_path / "run") >= {"train/gate_entropy", "train/gates/all/mean"}

    out = tmp_path / "adapter"
    trainer.save_model(str(out))
    assert (out / ("gatera_adapter.json" if gated else "adapter_config.json")).is_file()
    assert (out / "tokenizer.json").is_file() and not (out / "model.safetensors").exists()
    model.eval()
    input_ids = tokenizer(["Is 3 even? Answer: false"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = model(input_ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        if gated:
            load_adapter(base, out)
            reloaded = base
        else:
            from peft import PeftModel

            reloaded = PeftModel.from_pretrained(base, str(out)).eval()
        torch.testing.assert_close(reloaded(input_ids).logits, expected, rtol=1e-5, atol=1e-5)


def tensorboard_tags(log_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for events in log_dir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags
