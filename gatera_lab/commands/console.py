"""A quieter console for ``gatera-lab``: known-harmless third-party warnings filtered, a header and a closing line.

`quiet_known_warnings` filters, each by message, category and the module that raises it, the warnings a user
otherwise sees on every run and can do nothing about:

- Lightning's pytree helper asks torch about ``LeafSpec``, which torch deprecates (Lightning's own code);
- Lightning's model summary cannot size ``bf16-mixed`` weights and says it counts 32 bits (the parameter
  counts are right; only its size estimate is off);
- transformers' ``is_gradient_checkpointing`` alias, deprecated for ``is_activation_checkpointing``, which
  Lightning and PEFT code may still read;
- jsonargparse's deprecations of the calls LightningCLI itself makes (``instantiate_classes`` and friends).

Anything else, the project's own warnings (e.g. rows cut at ``max_length``) included, is shown as before.

`RunSummary` is the Lightning callback the CLI adds: at the start of training (rank zero) a header naming the
model, the method, the trainable parameters, the training rows, the optimizer steps and where logs and
checkpoints go; at the end of ``fit`` and ``test`` a line naming the files written.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

from gatera_lab.io.run_folder import run_folder

# (message regex, category, module regex): see the module docstring for why each is harmless
KNOWN_HARMLESS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree",
    ),
    (
        r"Precision bf16-mixed is not supported by the model summary",
        UserWarning,
        r"lightning\.pytorch\.utilities\.model_summary",
    ),
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning, r"transformers\.modeling_utils"),
    (
        r"(?s).*(deprecated in v4|only one JsonargparseDeprecationWarning)",
        DeprecationWarning,
        r"lightning\.pytorch\.cli",
    ),
)
TEST_FILES = ("test_results.json", "test_results.csv", "test_rows.jsonl")


def quiet_known_warnings() -> None:
    """Ignore the `KNOWN_HARMLESS` warnings (each by message, category and raising module); nothing else."""
    for message, category, module in KNOWN_HARMLESS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


class RunSummary(Callback):
    """Prints a run header when training starts and a line naming the written files when fit or test ends."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and not trainer.sanity_checking:
            print(run_header(trainer, pl_module), flush=True)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            files = [*checkpoint_files(trainer), *existing(run_folder(trainer), ("config.yaml",))]
            print(closing_line("fit", files), flush=True)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            print(closing_line("test", existing(run_folder(trainer), TEST_FILES)), flush=True)


def run_header(trainer: L.Trainer, pl_module: L.LightningModule) -> str:
    """``run: model M, method X, N trainable parameters, R training rows, S steps; logs ..., checkpoints ...``."""
    hparams = getattr(pl_module, "hparams", {})
    method = getattr(getattr(pl_module, "method", None), "name", "?")
    trainable = sum(parameter.numel() for parameter in pl_module.parameters() if parameter.requires_grad)
    rows = training_rows(trainer)
    saver = trainer.checkpoint_callback
    checkpoints = getattr(saver, "dirpath", None) or "not saved"
    return (
        f"run: model {hparams.get('model', '?')}, method {method}, {trainable:,} trainable parameters, "
        f"{'?' if rows is None else f'{rows:,}'} training rows, {int(trainer.estimated_stepping_batches):,} "
        f"optimizer steps; logs in {run_folder(trainer)}, checkpoints in {checkpoints}"
    )


def training_rows(trainer: L.Trainer) -> int | None:
    """The number of rows of the training loader's dataset, where it has a length."""
    loader = trainer.train_dataloader
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:  # an iterable dataset
        return None


def checkpoint_files(trainer: L.Trainer) -> list[Path]:
    """The checkpoint files the run's `ModelCheckpoint` kept (none where it saved nothing)."""
    saver = trainer.checkpoint_callback
    dirpath = getattr(saver, "dirpath", None)
    return sorted(Path(dirpath).glob("*.ckpt")) if dirpath and Path(dirpath).is_dir() else []


def existing(folder: Path, names: tuple[str, ...]) -> list[Path]:
    return [folder / name for name in names if (folder / name).is_file()]


def closing_line(stage: str, files: list[Path]) -> str:
    """``fit done: wrote A, B`` (or that nothing was written)."""
    written = ", ".join(map(str, files)) if files else "no files"
    return f"{stage} done: wrote {written}"
