"""A quieter console: the known-harmless third-party warnings are filtered (precisely), and a tiny run prints
its header and closing line."""

from __future__ import annotations

import re
import warnings

from gatera_lab.cli import main
from gatera_lab.commands.console import KNOWN_HARMLESS, quiet_known_warnings
from tests.helpers.tiny_cli_args import tiny_overrides

LEAF_SPEC = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."


def shown(message: str, category: type[Warning], module: str) -> bool:
    """Whether a warning raised from ``module`` gets through the filters."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn_explicit(message, category, f"{module}.py", 1, module=module)
    return bool(caught)


def test_only_the_known_warnings_from_their_own_modules_are_filtered():
    assert not shown(LEAF_SPEC, FutureWarning, "lightning.pytorch.utilities._pytree")
    assert shown(LEAF_SPEC, FutureWarning, "my_package.trees")  # the same text from elsewhere
    assert shown(LEAF_SPEC, UserWarning, "lightning.pytorch.utilities._pytree")  # another category
    assert shown("something else", FutureWarning, "lightning.pytorch.utilities._pytree")
    bf16 = "Precision bf16-mixed is not supported by the model summary.  Estimated model size in MB ..."
    assert not shown(bf16, UserWarning, "lightning.pytorch.utilities.model_summary.model_summary")
    gradient = "`is_gradient_checkpointing` is deprecated and will be removed in v6."
    assert not shown(gradient, FutureWarning, "transformers.modeling_utils")


def test_a_tiny_run_prints_its_header_and_closing_line_without_the_known_warnings(
    tiny_model_dir, instruction_file, tmp_path, capsys
):
    args = ["fit", "--config", "hira_gate", "--config", "quick"]
    args += tiny_overrides(tiny_model_dir, instruction_file, tmp_path)
    args += [
        "--trainer.max_steps",
        "1",
        "--trainer.val_check_interval",
        "1",
        "--trainer.limit_val_batches",
        "1",
    ]
    args += ["--test_after_fit", "false"]  # quick tests after fit; the tiny data has no test file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    known = [w for w in caught if any(re.match(m, str(w.message)) for m, _, _ in KNOWN_HARMLESS)]
    assert not known, [str(w.message) for w in known]
    out = capsys.readouterr().out
    run = tmp_path / "lightning_logs" / "version_0"
    header = next(line for line in out.splitlines() if line.startswith("run: "))
    assert f"model {tiny_model_dir}, method hira_gate, " in header and " trainable parameters, " in header
    assert (
        " training rows, 1 optimizer steps; " in header and f"logs in {run}, checkpoints in {run}" in header
    )
    fit_done = next(line for line in out.splitlines() if line.startswith("fit done: wrote "))
    assert str(run / "checkpoints") in fit_done and str(run / "config.yaml") in fit_done
