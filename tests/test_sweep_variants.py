"""Sweep variants: the finals again with settings changed, planned, selected, reported and paired with the finals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gatera_lab.cli import main
from gatera_lab.errors import ConfigError
from gatera_lab.experiments import build_plan, load_sweep, run_status, write_record
from gatera_lab.experiments.command import selection
from gatera_lab.experiments.run_config import caching_resolver, get_path
from tests.test_experiments import compact_test_rows

TASKS = ("boolq", "piqa", "social_i_qa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")
BIAS_KEY = "model.method.init_args.gate_bias"
OPEN_GATES = {
    "description": "gates start near sigmoid(3) = 0.95.",
    "methods": ["hira_gate"],
    "overrides": {BIAS_KEY: 3.0},
    "seeds": [42, 43],
}


@pytest.fixture(scope="module")
def resolver():
    return caching_resolver()


def small_sweep(tmp_path: Path, **changes) -> Path:
    """One family (hira, hira_gate) at one rate, two seeds, the open-gates variant, a claims file with variants."""
    claims = {
        "variants": [
            {
                "label": "hira_gate open minus hira_gate",
                "variant": "open_gates",
                "pairs": [["hira_gate", "hira_gate"]],
            },
            {
                "label": "hira_gate open minus hira",
                "variant": "open_gates",
                "pairs": [["hira_gate", "hira"]],
                "hypothesis": "negative",
            },
        ]
    }
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump(claims))
    data = {
        "name": "variants",
        "overlay": ["configs/sweeps/reproduction_overlay.yaml"],
        "families": {"hira": {"methods": ["hira", "hira_gate"], "learning_rates": [1e-3]}},
        "seeds": [42, 43],
        "variants": {"open_gates": OPEN_GATES},
        "claims": str(tmp_path / "claims.yaml"),
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"open-gates!": OPEN_GATES}, "option 'variants.open-gates!' must be a name of letters"),
        (
            {"v": OPEN_GATES | {"methods": ["lora_gate"]}},
            "'variants.v.methods' names 'lora_gate', which belongs",
        ),
        ({"v": OPEN_GATES | {"methods": ["qlora"]}}, "'variants.v.methods' names 'qlora', not a registered"),
        ({"v": OPEN_GATES | {"overrides": {}}}, "option 'variants.v' must name methods, overrides and seeds"),
        ({"v": OPEN_GATES | {"seeds": [42, 7]}}, "option 'variants.v.seeds' names seed(s) [7] that no final"),
        ({"v": OPEN_GATES | {"seeds": [42, 42]}}, "option 'variants.v.seeds' repeats a seed"),
        ({"v": OPEN_GATES | {"colour": "red"}}, "colour"),
    ],
)
def test_bad_variants_are_errors_naming_file_and_option(tmp_path, variants, message):
    path = small_sweep(tmp_path, variants=variants)
    with pytest.raises(ConfigError) as error:
        load_sweep(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_variant_runs_wait_for_the_rate_then_carry_the_overrides_and_their_name(tmp_path, resolver, capsys):
    spec = load_sweep(small_sweep(tmp_path))
    plan = build_plan(spec, {}, resolver)
    (waiting,) = [group for group in plan.waiting if group.phase == "variant"]
    assert waiting.variant == "open_gates" and "open_gates" in waiting.describe()
    # --only open_gates keeps the family's search, which the variant waits for
    assert selection(plan, ["open_gates"]) == {run.name for run in plan.runs if "lr_search" in run.phases}

    search = {
        run.name: {"name": run.name, "validation": {"accuracy": {"avg": 0.5}, "loss": 1.0}}
        for run in plan.runs
    }
    plan = build_plan(spec, search, resolver)
    variants = [run for run in plan.runs if "variant" in run.phases]
    finals = {run.seed: run for run in plan.runs if "final" in run.phases and run.method == "hira_gate"}
    assert [(run.method, run.seed, run.variant) for run in variants] == [
        ("hira_gate", 42, "open_gates"),
        ("hira_gate", 43, "open_gates"),
    ]
    for run in variants:
        assert run.name.startswith(f"hira_gate_lr0.001_ent0.01_open_gates_seed{run.seed}-")
        assert (
            get_path(run.resolved, BIAS_KEY) == 3.0 and get_path(finals[run.seed].resolved, BIAS_KEY) == 0.0
        )
        assert run.identity != finals[run.seed].identity and run.needs_test
        assert run_status(run, None) == "pending"
    assert selection(plan, ["open_gates"]) == {run.name for run in variants}
    for record in search.values():
        write_record(tmp_path / "records", record)
    dry_run = ["--only", "open_gates", "--records", str(tmp_path / "records"), "--dry-run"]
    assert main(["sweep", "--sweep", str(spec.path), *dry_run]) == 0
    printed = capsys.readouterr().out
    assert printed.count("(variant, about") == 2


def fake_record(run, average: float, gate_mean: float | None) -> dict:
    test = {
        "settings": run.test_settings,
        "accuracy": dict.fromkeys(TASKS, average) | {"avg": average},
        "counts": {task: [round(200 * average), 200] for task in TASKS},
        "rows": compact_test_rows(average),
        "wall_seconds": 60.0,
    }
    gates = None
    if gate_mean is not None:
        gates = {"groups": {"all": {"mean": gate_mean, "near_binary": 0.1, "entropy": 0.3}}}
    return {
        "name": run.name,
        "method": run.method,
        "seed": run.seed,
        "kind": run.kind,
        "validation": {"accuracy": {"avg": 0.5}, "loss": 1.0},
        "fit": {"wall_seconds": 900.0, "gate_trace": {"steps": [0, 50], "mean": [gate_mean, gate_mean]}},
        "gates": gates,
        "test": test,
    }


def test_the_report_pairs_variant_runs_with_the_finals_of_the_same_seed(tmp_path, resolver):
    """hira 50%, hira_gate 49%, hira_gate with open gates 52%: the open variant beats both, by 3 and 2 points."""
    sweep = small_sweep(tmp_path)
    spec = load_sweep(sweep)
    records: dict[str, dict] = {}
    for _ in range(2):  # the search, then the finals and variants it names
        for run in build_plan(spec, records, resolver).runs:
            gated = run.method == "hira_gate"
            average = 0.52 if run.variant else 0.49 if gated else 0.50
            gate_mean = (0.95 if run.variant else 0.5) if gated else None
            records.setdefault(run.name, fake_record(run, average, gate_mean))
    for record in records.values():
        write_record(tmp_path / "records", record)
    out = tmp_path / "results.md"
    assert (
        main(["report", "--records", str(tmp_path / "records"), "--out", str(out), "--sweep", str(sweep)])
        == 0
    )
    page = out.read_text()
    assert "hira_gate open minus hira_gate = +3.00 points" in page
    assert "hypothesis: positive → **supported**" in page
    assert "hira_gate open minus hira = +2.00 points" in page
    assert "hypothesis: negative → **refuted**" in page
    assert "- `open_gates` (hira_gate; seeds 42, 43): gates start near sigmoid(3) = 0.95." in page
    assert f"`{BIAS_KEY}: 3.0`" in page
    assert (
        "| open_gates | hira_gate | 42, 43 | 52.0 ± 0.0 | 49.0 ± 0.0 | 0.950 (0.500) | 0.950 (0.500) |"
        in page
    )
