"""`CommonsenseDataModule` on the offline sets (small caps) with a character tokenizer saved to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatera_lab.datamodules.commonsense_datamodule import CommonsenseDataModule
from gatera_lab.errors import ConfigError
from tests.helpers.char_tokenizer import make_char_tokenizer


@pytest.fixture
def tokenizer_dir(tmp_path: Path) -> str:
    make_char_tokenizer().save_pretrained(tmp_path / "tokenizer")
    return str(tmp_path / "tokenizer")


def test_loaders_of_every_stage(olmo_wheel, tokenizer_dir: str) -> None:
    tasks = ["boolq", "arc_challenge", "obqa"]
    data = CommonsenseDataModule(
        tokenizer_dir, tasks=tasks, per_task_cap=20, val_size=12, test_limit=3, max_length=64, batch_size=4
    )
    data.setup("fit")
    assert len(data.train_examples) == 3 * 20 - 12 and len(data.val_items) == 12
    train = next(iter(data.train_dataloader()))
    assert train["input_ids"].shape[0] == 4 and train["input_ids"].shape[1] <= 64
    assert train["response_mask"].sum() > 0
    loss_loader, eval_loader = data.val_dataloader()
    assert "response_mask" in next(iter(loss_loader))
    batch = next(iter(eval_loader))
    assert {"candidate_ids", "gold", "task_index"} <= set(batch) and batch["attention_mask"][:, -1].all()
    data.setup("test")
    assert data.task_names == ("boolq", "arc_challenge", "openbookqa")
    indices = [index for batch in data.test_dataloader() for index in batch["task_index"].tolist()]
    assert sorted(indices) == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # every row once, batched by length
    lengths = [
        len(item.prompt_ids) + max(map(len, item.candidate_ids)) for item in data.test_dataloader().dataset
    ]
    assert lengths == sorted(lengths)


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown commonsense task 'mmlu'"):
        CommonsenseDataModule(tasks=["mmlu"])
    with pytest.raises(ConfigError, match="'batch_size' and 'eval_batch_size' must be >= 1"):
        CommonsenseDataModule(eval_batch_size=0)


def test_a_second_setup_reads_the_tokenized_cache(olmo_wheel, tokenizer_dir: str, monkeypatch) -> None:
    """Same data options: the second DataModule neither builds the mixture nor tokenises; new options do."""
    from gatera_lab.datamodules import commonsense_datamodule

    options = dict(tasks=["piqa", "obqa"], per_task_cap=10, val_size=4, max_length=None, format="choice_text")
    first = CommonsenseDataModule(tokenizer_dir, **options)
    first.setup("fit")

    def no_build(*args, **kwargs):
        raise AssertionError("the mixture was built again")

    monkeypatch.setattr(commonsense_datamodule, "build_training_mixture", no_build)
    second = CommonsenseDataModule(tokenizer_dir, **options)
    second.setup("fit")
    assert second.train_examples == first.train_examples and len(second.val_items) == 4
    assert second.max_length == first.max_length
    with pytest.raises(AssertionError, match="built again"):
        CommonsenseDataModule(tokenizer_dir, **{**options, "per_task_cap": 9}).setup("fit")
