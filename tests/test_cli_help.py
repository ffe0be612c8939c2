"""``gatera-lab``, ``-h`` and ``--help`` list every subcommand; ``predict`` is refused with a pointer."""

from __future__ import annotations

import pytest

from gatera_lab.cli import EXTRA_COMMANDS, main, run_lightning_cli

LIGHTNING_COMMANDS = ["fit", "validate", "test"]


def listed(text: str) -> dict[str, str]:
    """``{subcommand: description}`` of the help's indented rows."""
    rows = [line.split(maxsplit=1) for line in text.splitlines() if line.startswith("  ")]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


@pytest.mark.parametrize("argv", [[], ["-h"], ["--help"]], ids=["no-args", "-h", "--help"])
def test_help_lists_every_subcommand_with_a_description(argv, capsys):
    assert main(argv) == 0
    out = capsys.readouterr().out
    commands = listed(out)
    assert list(commands) == [*LIGHTNING_COMMANDS, *EXTRA_COMMANDS]
    assert {"methods", "export", "gates", "sweep", "report", "generate", "compare"} <= set(commands)
    assert all(commands.values()), commands
    assert "predict" not in out
    assert "gatera-lab SUBCOMMAND --help" in out


def test_predict_is_refused_with_a_pointer_to_generate(capsys):
    assert main(["predict", "--config", "configs/hira_gate.yaml"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(
        "gatera-lab: error: subcommand 'predict' is not offered"
    )
    assert "gatera-lab generate" in error


def test_lightning_cli_itself_has_no_predict(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_lightning_cli(["predict"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'predict'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["eval", "export", "gates", "generate"])
def test_base_model_is_one_option_with_one_name(command, capsys):
    """``--base-model`` stores to ``base_model`` in every command that loads a checkpoint's base."""
    import importlib

    parser = importlib.import_module(f"gatera_lab.commands.{command}_command").build_parser()
    (action,) = [action for action in parser._actions if "--base-model" in action.option_strings]
    assert action.dest == "base_model" and action.option_strings == ["--base-model"]
    if command in ("eval", "generate"):  # the earlier name still works, with a note
        namespace = parser.parse_args(
            ["--model", "tiny", "--tasks", "x"] if command == "eval" else ["--model", "tiny"]
        )
        assert namespace.base_model == "tiny"
        assert "--model is deprecated; use --base-model" in capsys.readouterr().err
