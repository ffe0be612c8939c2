"""Resuming from a checkpoint written inside an epoch continues with exactly the batches of an uninterrupted run."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DistributedSampler

from gatera_lab import CheckpointMismatchError
from gatera_lab.datamodules.epoch_seeded_sampler import EpochSeededSampler
from gatera_lab.datamodules.instruction_loaders import instruction_loader
from gatera_lab.datamodules.resumable_loader import ResumableLoader
from tests.helpers.tiny_fit import fit_resumable, tiny_data

BATCHES_PER_EPOCH = 5  # 24 records - 5 held out = 19 rows in batches of 4: the last batch holds 3


class StepRecorder(Callback):
    """The input ids and the loss of every training batch."""

    def __init__(self) -> None:
        self.input_ids: list[torch.Tensor] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.input_ids.append(batch["input_ids"].clone())
        self.losses.append(float(outputs["loss"]))


class StopAtStep(Callback):
    """Simulates an interruption right after optimizer step ``step`` (and its checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            trainer.should_stop = True


def fit(model_dir, instruction_file, root, limits, stop_at=None, ckpt_path=None):
    """Fit gated LoRA with dropout (random numbers matter) and a checkpoint (and ``last.ckpt``) every step."""
    recorder = StepRecorder()
    stop = [StopAtStep(stop_at)] if stop_at is not None else []
    options = {"dropout": 0.1, "entropy_weight": 0.05}
    trainer = fit_resumable(
        model_dir,
        instruction_file,
        root,
        "lora_gate",
        options,
        [recorder, *stop],
        ckpt_path,
        every_n_train_steps=1,
        data_options={"val_size": 5},
        **limits,
    )
    return recorder, trainer


@pytest.mark.parametrize(
    ("limits", "stop_at"),
    [
        ({"max_epochs": 2}, 3),  # inside epoch 0; the resumed run crosses into epoch 1
        ({"max_epochs": 2}, 7),  # inside epoch 1
        ({"max_epochs": 2, "max_steps": 8}, 3),  # step-limited (as configs/quick.yaml): ends inside epoch 1
        ({"max_epochs": 2, "max_steps": 8}, 5),  # the last batch of epoch 0, with a step limit
        ({"max_epochs": 2, "max_steps": 8, "val_check_interval": 3}, 3),  # validation due at step 3
    ],
    ids=["epoch0-step3", "epoch1-step7", "max_steps-step3", "max_steps-epoch_end", "validation_due"],
)
def test_resume_inside_an_epoch_sees_the_uninterrupted_batches(
    tiny_model_dir, instruction_file, tmp_path, limits, stop_at
):
    full, full_trainer = fit(tiny_model_dir, instruction_file, tmp_path / "full", limits)
    first, _ = fit(tiny_model_dir, instruction_file, tmp_path / "part", limits, stop_at=stop_at)
    # both are written at the batch's end, before a validation due at that step (which the resumed run skips)
    (step_file,) = (tmp_path / "part").glob(f"epoch=*-step={stop_at}.ckpt")
    steps = min(limits.get("max_steps", 10), 2 * BATCHES_PER_EPOCH)
    assert len(full.input_ids) == steps and len(first.input_ids) == stop_at
    for checkpoint in (step_file, tmp_path / "part" / "last.ckpt"):
        assert torch.load(checkpoint, weights_only=False)["global_step"] == stop_at
        root = tmp_path / f"resumed_from_{checkpoint.stem}"
        second, trainer = fit(tiny_model_dir, instruction_file, root, limits, ckpt_path=checkpoint)

        assert len(second.input_ids) == steps - stop_at  # no batch skipped, none seen twice
        for step, (expected, seen) in enumerate(
            zip(full.input_ids, first.input_ids + second.input_ids, strict=True)
        ):
            assert torch.equal(expected, seen), f"from {checkpoint.name}: step {step + 1} saw other rows"
        assert first.losses + second.losses == pytest.approx(full.losses, rel=1e-6, abs=1e-7)
        assert (trainer.global_step, trainer.current_epoch) == (
            full_trainer.global_step,
            full_trainer.current_epoch,
        )
        epoch_loop, full_epoch_loop = trainer.fit_loop.epoch_loop, full_trainer.fit_loop.epoch_loop
        assert epoch_loop._batches_that_stepped == full_epoch_loop._batches_that_stepped  # the logging step


def test_checkpoint_records_the_place_in_the_epoch(tiny_model_dir, instruction_file, tmp_path):
    fit(tiny_model_dir, instruction_file, tmp_path, {"max_epochs": 2}, stop_at=7)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    expected = {"epoch": 1, "position": 2 * 4, "size": 19, "seed": 42, "shuffle": True, "num_replicas": 1}
    assert checkpoint["LLMAdaptersJSONDataModule"] == {"train_loader": expected}  # restored from here
    lightning_copy = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert lightning_copy == [expected]


def train_examples(model_dir, instruction_file):
    data = tiny_data(model_dir, instruction_file, val_size=5)
    data.setup("fit")
    return data.train_examples, data.tokenizer


def test_workers_drawing_ahead_do_not_move_the_saved_place(tiny_model_dir, instruction_file):
    examples, tokenizer = train_examples(tiny_model_dir, instruction_file)
    reference = [
        batch["input_ids"] for batch in instruction_loader(examples, tokenizer, 4, 0, shuffle_seed=3)
    ]
    loader = instruction_loader(examples, tokenizer, 4, num_workers=2, shuffle_seed=3)
    batches = iter(loader)
    seen = [next(batches)["input_ids"] for _ in range(2)]  # the workers have drawn further indices by now
    state = loader.state_dict()
    del batches
    assert state["position"] == 2 * 4

    resumed = instruction_loader(examples, tokenizer, 4, num_workers=0, shuffle_seed=3)
    resumed.load_state_dict(state)
    seen += [batch["input_ids"] for batch in resumed]
    assert len(seen) == len(reference) == BATCHES_PER_EPOCH
    assert all(torch.equal(a, b) for a, b in zip(seen, reference, strict=True))


def test_the_order_is_the_seeded_permutation_and_the_ranks_share_it():
    single = EpochSeededSampler(10, seed=5)
    single.set_epoch(2)
    permutation = torch.randperm(10, generator=torch.Generator().manual_seed(5 + 2)).tolist()
    assert list(single) == permutation  # the order before this sampler kept state
    ranks = [EpochSeededSampler(10, seed=5, num_replicas=3, rank=rank) for rank in range(3)]
    for sampler in ranks:
        sampler.set_epoch(2)
    padded = permutation + permutation[:2]  # 12 = 3 replicas x ceil(10 / 3)
    assert [list(sampler) for sampler in ranks] == [padded[rank::3] for rank in range(3)]
    # a DistributedSampler already: Lightning does not wrap it in DistributedSamplerWrapper under DDP
    assert isinstance(single, DistributedSampler)


def test_a_finished_epoch_starts_the_next_one():
    sampler = EpochSeededSampler(6, seed=1)
    first = list(sampler)
    sampler.advance(6)
    second = list(sampler)
    assert sampler.epoch == 1 and sorted(second) == sorted(first) and second != first
    sampler.set_epoch(1)  # Lightning's set_epoch for the epoch already begun keeps the place
    sampler.advance(4)
    sampler.set_epoch(1)
    assert list(sampler) == second[4:]


def test_a_mid_epoch_state_from_other_data_is_refused():
    saved = EpochSeededSampler(10, seed=1)
    saved.advance(4)
    with pytest.raises(CheckpointMismatchError, match="inside epoch 0 .* 10 rows .* this run's is 12 rows"):
        EpochSeededSampler(12, seed=1).load_state_dict(saved.state_dict())
    saved.advance(6)  # the epoch is over: any data may start the next one
    other = EpochSeededSampler(12, seed=1)
    other.load_state_dict(saved.state_dict())
    assert other.epoch == 0 and len(list(other)) == 12 and other.epoch == 1


def test_only_the_shuffled_training_loader_is_resumable(tiny_model_dir, instruction_file):
    examples, tokenizer = train_examples(tiny_model_dir, instruction_file)
    assert isinstance(instruction_loader(examples, tokenizer, 4, 0, shuffle_seed=1), ResumableLoader)
    # Lightning would otherwise save the validation loader's state too
    assert not hasattr(instruction_loader(examples, tokenizer, 4, 0), "state_dict")


def logged_losses(run_dir) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir)).Reload()
    return {event.step: event.value for event in events.Scalars("train/loss")}


def test_quick_overlay_writes_last_ckpt_and_resumes_inside_the_epoch(
    tiny_model_dir, instruction_file, tmp_path
):
    """configs/quick.yaml's checkpoints, through the real CLI: 10 batches of 2 rows per epoch, 6 steps,
    validation (and a checkpoint after it) every 3; the run stopped at step 3 resumes from ``last.ckpt``."""
    from gatera_lab.cli import main
    from tests.helpers.tiny_cli_args import tiny_overrides

    args = ["fit", "--config", "configs/lora.yaml", "--config", "configs/quick.yaml"]  # LoRA dropout 0.05
    args += [*tiny_overrides(tiny_model_dir, instruction_file, tmp_path), "--data.batch_size", "2"]
    args += ["--trainer.max_steps", "6", "--trainer.val_check_interval", "3", "--test_after_fit", "false"]
    args += ["--trainer.log_every_n_steps", "1"]
    stop = ["--trainer.callbacks+=tests.test_mid_epoch_resume.StopAtStep", "--trainer.callbacks.step=3"]
    assert main(args) == 0  # version_0: uninterrupted
    assert main([*args, *stop]) == 0  # version_1: stopped after step 3 and its validation
    runs = tmp_path / "lightning_logs"
    assert {path.name for path in (runs / "version_0" / "checkpoints").iterdir()} == {
        "epoch=0-step=6.ckpt",
        "last.ckpt",
    }
    last = runs / "version_1" / "checkpoints" / "last.ckpt"
    assert main([*args, "--ckpt_path", str(last)]) == 0  # version_2: resumed

    full, first, resumed = (logged_losses(runs / f"version_{index}") for index in range(3))
    assert sorted(full) == [0, 1, 2, 3, 4, 5] and sorted(first) == [0, 1, 2] and sorted(resumed) == [3, 4, 5]
    assert {**first, **resumed} == pytest.approx(full, rel=1e-6)
