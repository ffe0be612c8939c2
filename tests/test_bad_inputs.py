"""A corpus of malformed data files and configurations, each through the real CLI: exit 2, one named error.

Every case runs ``gatera-lab fit`` in-process (``main([...])``): the error line must name the file and row,
or the option, and nothing may end in a traceback. Also: data files in UTF-16 or with a byte-order mark
are read, ``val_size=0`` trains without validation, negative sizes are refused, and cut rows are counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gatera_lab.cli import main
from gatera_lab.datamodules.commonsense_datamodule import CommonsenseDataModule
from gatera_lab.datamodules.commonsense_tasks import CommonsenseExample
from gatera_lab.datamodules.instruction_data import read_instruction_file, tokenize_instruction
from gatera_lab.datamodules.instruction_prompt import render_prompt
from gatera_lab.datamodules.llm_adapters_json import LLMAdaptersJSONDataModule
from gatera_lab.errors import ConfigError
from tests.helpers.cli_process import run_cli_process
from tests.helpers.tiny_checkpoint import make_char_tokenizer
from tests.helpers.tiny_cli_args import tiny_overrides

ROW = {"instruction": "Is 2 even? Answer format: true/false", "input": "", "output": "true", "answer": "true"}
ROWS = [ROW, {**ROW, "instruction": "Is 3 even? Answer format: true/false", "output": "false"}] * 4
ROWS_TEXT = json.dumps(ROWS, indent=1)


def cli_args(model_dir: Path, train_file: Path | str, root: Path, *options: str) -> list[str]:
    """``fit`` on the tiny model and ``train_file`` for one step (``options`` come last and win)."""
    sizes = ["--data.val_size", "2", "--data.batch_size", "2", "--data.max_length", "256"]
    tiny = tiny_overrides(model_dir, train_file, root)
    return ["fit", "--config", "configs/lora.yaml", *tiny, *sizes, "--trainer.fast_dev_run", "1", *options]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(args)``'s return code (or SystemExit code), stdout and stderr."""
    try:
        code = main(args)
    except SystemExit as exit_info:  # jsonargparse's own parse errors
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_named_error(code: int, out: str, err: str, pattern: str) -> str:
    """Exit 2, exactly one ``gatera-lab: error:`` line (the last of stderr) matching ``pattern``, no traceback."""
    assert code == 2, err[-2000:]
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("gatera-lab: error: ")]
    assert len(errors) == 1, err[-2000:]
    assert err.rstrip("\n").splitlines()[-1] == errors[0]
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


# ---------------------------------------------------------------- malformed data files
DATA_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "binary bytes": (
        lambda p: p.write_bytes(bytes(range(256)) * 4),
        r"bad\.json: not a UTF-8 or UTF-16 text file \(read as UTF-16-BE: .* at byte offset \d+, line 1",
    ),
    "latin-1 text": (
        lambda p: p.write_bytes(
            json.dumps([{**ROW, "output": "café"}], ensure_ascii=False).encode("latin-1")
        ),
        r"bad\.json: not a UTF-8 or UTF-16 text file \(read as UTF-8: the bytes e9 .* at byte offset \d+, line 1",
    ),
    "truncated json": (
        lambda p: p.write_text(ROWS_TEXT[: len(ROWS_TEXT) // 2]),
        r"bad\.json: not valid JSON \(.* at line \d+ column \d+, character \d+\)",
    ),
    "object at top level": (
        lambda p: p.write_text(json.dumps(ROW)),
        r"bad\.json: expected a JSON list of records, got an object",
    ),
    "row that is a string": (
        lambda p: p.write_text(json.dumps([ROW, "Is 4 even?"])),
        r"bad\.json, row 1: expected an object, got a string",
    ),
    "row without output": (
        lambda p: p.write_text(json.dumps([ROW, ROW, {"instruction": "Is 5 even?"}])),
        r"bad\.json, row 2: field 'output' is missing",
    ),
    "row without instruction": (
        lambda p: p.write_text(json.dumps([{"output": "true"}])),
        r"bad\.json, row 0: field 'instruction' is missing",
    ),
    "number as output": (
        lambda p: p.write_text(json.dumps([ROW, {**ROW, "output": 3}])),
        r"bad\.json, row 1: field 'output' must be a string, got a number",
    ),
    "list as input": (
        lambda p: p.write_text(json.dumps([{**ROW, "input": ["context"]}])),
        r"bad\.json, row 0: field 'input' must be a string, got a list",
    ),
    "empty list": (lambda p: p.write_text("[]"), r"bad\.json: the file holds no records"),
    "folder": (lambda p: p.mkdir(), r"bad\.json: is a folder, not a JSON file"),
}


@pytest.mark.parametrize("case", list(DATA_FILES))
def test_bad_data_file_is_one_named_error(case, tiny_model_dir, tmp_path, capsys):
    write, pattern = DATA_FILES[case]
    path = tmp_path / "bad.json"
    write(path)
    code, out, err = run_cli(cli_args(tiny_model_dir, path, tmp_path), capsys)
    assert_one_named_error(code, out, err, pattern)


def test_binary_file_in_a_real_process_has_no_traceback(tiny_model_dir, tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(bytes(range(256)) * 4)
    result = run_cli_process(cli_args(tiny_model_dir, path, tmp_path))
    assert_one_named_error(
        result.returncode, result.stdout, result.stderr, r"bad\.json: not a UTF-8 or UTF-16"
    )


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b"\xef\xbb\xbf"), ("utf-16", None), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")],
)
def test_utf16_and_byte_order_marks_are_read(encoding, bom, tmp_path):
    rows = [{**ROW, "output": "vrai, café ☕"}]
    data = json.dumps(rows, ensure_ascii=False).encode(encoding)
    path = tmp_path / "rows.json"
    path.write_bytes(data if bom is None else bom + data)
    assert read_instruction_file(path) == rows


def test_utf16_file_trains_through_the_cli(tiny_model_dir, tmp_path, capsys):
    path = tmp_path / "utf16.json"
    path.write_bytes(ROWS_TEXT.encode("utf-16"))  # with a byte-order mark, as Windows editors save it
    code, out, err = run_cli(cli_args(tiny_model_dir, path, tmp_path), capsys)
    assert code == 0, err[-2000:]


# ---------------------------------------------------------------- malformed configurations
def write_yaml(name: str, text: str) -> Callable[[Path], list[str]]:
    def options(folder: Path) -> list[str]:
        (folder / name).write_text(text)
        return ["--config", str(folder / name)]

    return options


CONFIGS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "unknown method": (
        lambda _: ["--model.method", "qlora"],
        r"unknown method 'qlora'; registered methods: lora, lora_gate",
    ),
    "negative max_train_examples": (
        lambda _: ["--data.max_train_examples", "-3"],
        r"error: option 'max_train_examples' must be >= 1 \(or null for all rows\), got -3$",
    ),
    "zero max_train_examples": (
        lambda _: ["--data.max_train_examples", "0"],
        r"option 'max_train_examples' must be >= 1 .*got 0$",
    ),
    "negative val_size": (lambda _: ["--data.val_size", "-1"], r"option 'val_size' must be >= 0, got -1$"),
    "zero batch_size": (lambda _: ["--data.batch_size", "0"], r"option 'batch_size' must be >= 1, got 0$"),
    "max_length of one": (lambda _: ["--data.max_length", "1"], r"option 'max_length' must be >= 2, got 1$"),
    "negative num_workers": (
        lambda _: ["--data.num_workers", "-2"],
        r"option 'num_workers' must be >= 0, got -2$",
    ),
    "config that is not yaml": (
        write_yaml("broken.yaml", "trainer:\n  max_steps: [1\n  callbacks: : x\n"),
        r"config file '.*broken\.yaml' is not valid YAML: .* at line \d+, column \d+$",
    ),
    "config that is a list": (
        write_yaml("list.yaml", "- trainer\n- model\n"),
        r"config file '.*list\.yaml' must hold a mapping of options .*got a list$",
    ),
    "nonexistent train_file": (
        lambda folder: ["--data.train_file", str(folder / "missing.json")],
        r"instruction file '.*missing\.json' does not exist$",
    ),
}


@pytest.mark.parametrize("case", list(CONFIGS))
def test_bad_config_is_one_named_error(case, tiny_model_dir, instruction_file, tmp_path, capsys):
    options, pattern = CONFIGS[case]
    args = cli_args(tiny_model_dir, instruction_file, tmp_path, *options(tmp_path))
    code, out, err = run_cli(args, capsys)
    assert_one_named_error(code, out, err, pattern)


def test_wrong_option_type_is_a_parse_error_naming_the_option(
    tiny_model_dir, instruction_file, tmp_path, capsys
):
    """jsonargparse refuses it while parsing: usage text, then an error naming the option; exit 2."""
    args = cli_args(tiny_model_dir, instruction_file, tmp_path, "--data.val_size", "twelve")
    code, out, err = run_cli(args, capsys)
    assert code == 2 and "Traceback" not in out + err
    assert 'Parser key "val_size":' in err and "Expected a <class 'int'>. Got value: twelve" in err


def test_size_options_are_checked_at_construction():
    with pytest.raises(
        ConfigError, match=r"option 'test_limit' must be >= 1 \(or null for all rows\), got -5"
    ):
        CommonsenseDataModule(test_limit=-5)
    with pytest.raises(ConfigError, match=r"option 'val_size' must be >= 0, got -1"):
        CommonsenseDataModule(val_size=-1)
    with pytest.raises(ConfigError, match=r"option 'per_task_cap' must be >= 1 .*got 0"):
        CommonsenseDataModule(per_task_cap=0)


# ---------------------------------------------------------------- val_size=0
def test_json_datamodule_without_validation_split(tiny_model_dir, instruction_file, tmp_path, capsys):
    data = LLMAdaptersJSONDataModule(str(instruction_file), str(tiny_model_dir), val_size=0, max_length=256)
    data.setup("fit")
    assert len(data.train_examples) == 24 and data.val_dataloader() == []  # no loader: validation skipped
    args = cli_args(tiny_model_dir, instruction_file, tmp_path, "--data.val_size", "0")
    assert main(args) == 0


def write_boolq_170k(folder: Path, rows: int = 12) -> Path:
    """A ``commonsense_170k.json`` of BoolQ rows only, for ``source: llm_adapters`` with ``data_dir``."""
    records = []
    for index in range(rows):
        record = CommonsenseExample("boolq", f"is {index} even", ("true", "false"), index % 2).to_record()
        del record["task"]
        records.append(record)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "commonsense_170k.json").write_text(json.dumps(records))
    return folder


def test_commonsense_datamodule_without_validation_split(tiny_model_dir, tmp_path, capsys):
    data_dir = write_boolq_170k(tmp_path / "data")
    data = CommonsenseDataModule(
        str(tiny_model_dir), "llm_adapters", ["boolq"], val_size=0, data_dir=str(data_dir), max_length=200
    )
    data.setup("fit")
    assert len(data.train_examples) == 12 and data.val_items == [] and data.val_dataloader() == []
    args = ["fit", "--config", "configs/lora.yaml", "--model.model", str(tiny_model_dir)]
    args += [
        "--model.method.init_args.r",
        "4",
        "--data.source",
        "llm_adapters",
        "--data.data_dir",
        str(data_dir),
    ]
    args += ["--data.tasks", "[boolq]", "--data.val_size", "0", "--data.batch_size", "4"]
    args += ["--data.max_length", "200", "--trainer.default_root_dir", str(tmp_path)]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.fast_dev_run", "1"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err[-2000:]


# ---------------------------------------------------------------- rows cut to max_length
def test_tokenize_instruction_counts_what_it_cut():
    tokenizer = make_char_tokenizer()
    whole = tokenize_instruction(ROW, tokenizer, 10_000)
    prompt_length = whole.response_mask.index(True)
    assert (whole.prompt_cut, whole.response_cut) == (0, 0)
    left = tokenize_instruction(ROW, tokenizer, prompt_length)  # the response (5 tokens) stays whole
    assert (left.prompt_cut, left.response_cut) == (5, 0) and left.input_ids == whole.input_ids[5:]
    short = tokenize_instruction(ROW, tokenizer, 3)  # "tru": no prompt left, the response cut at the end
    assert (short.prompt_cut, short.response_cut) == (prompt_length, 2)
    assert short.input_ids == whole.input_ids[prompt_length : prompt_length + 3] and all(short.response_mask)


def test_cut_rows_are_counted_and_reported_once(tiny_model_dir, tmp_path):
    rows = [ROW] * 6 + [{**ROW, "output": "x" * 400}] * 2 + [{**ROW, "instruction": "?"}] * 4
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    prompt_length = len(make_char_tokenizer()(render_prompt(ROW["instruction"]))["input_ids"])
    max_length = prompt_length + 3  # ROW needs prompt + 5, "?" rows fit, "x" * 400 rows exceed it alone
    data = LLMAdaptersJSONDataModule(str(path), str(tiny_model_dir), val_size=0, max_length=max_length)
    with pytest.warns(UserWarning) as warned:
        data.setup("fit")
    report = data.truncation["train"]
    assert (report.rows, report.prompt_cut, report.response_cut, report.cut) == (12, 6, 2, 8)
    messages = [str(warning.message) for warning in warned if "max_length" in str(warning.message)]
    assert messages == [
        f"LLMAdaptersJSONDataModule: 8 of 12 training rows longer than max_length={max_length} were cut "
        "(6 lost the start of the prompt (left truncation); 2 lost the whole prompt and the end of the response); "
        "raise max_length, or set it to null to keep every row whole"
    ]
    data.setup("fit")  # built once: no second report
    whole = LLMAdaptersJSONDataModule(str(path), str(tiny_model_dir), val_size=2, max_length=1000)
    whole.setup("fit")
    assert whole.truncation["train"].cut == 0 and whole.truncation["validation"].rows == 2
