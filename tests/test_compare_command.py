"""``gatera-lab compare``: row-by-row comparison of tested runs, numbers checked by hand, and its errors."""

from __future__ import annotations

import json

import pytest

from gatera_lab.cli import main


def write_rows(path, outcomes: dict[str, list[int]], metric_offset: int = 0):
    """``test_rows.jsonl`` with rows ``<task>/<i>``: gold 0, predicted 0 when right, 1 when wrong."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for task, correct in outcomes.items():
        for index, right in enumerate(correct):
            predicted = 0 if right else 1
            row = {"row_id": f"{task}/{index}", "task": task, "gold": 0, "predicted": predicted}
            lines.append(json.dumps(row | {"acc": predicted, "acc_norm": (predicted + metric_offset) % 2}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_one_pair_by_hand(tmp_path, capsys):
    # piqa: A right on 4 of 4, B on 2 of 4; arc: A 1 of 2, B 1 of 2 (on different rows)
    first = write_rows(
        tmp_path / "a" / "version_0" / "test_rows.jsonl", {"piqa": [1, 1, 1, 1], "arc": [1, 0]}
    )
    second = write_rows(tmp_path / "b.jsonl", {"piqa": [1, 0, 1, 0], "arc": [0, 1]})
    out = tmp_path / "comparison.json"
    assert main(["compare", "--first", str(tmp_path / "a"), "--second", str(second), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| piqa | 100.00 | 50.00 | +50.00 |" in printed and "| arc | 50.00 | 50.00 | +0.00 |" in printed
    # d = 100 * (5 - 3) / 6 rows; discordant rows: 3 right under A only, 1 under B only
    assert "first minus second: +33.33 points" in printed and "over 1 pair(s) x 6 rows" in printed
    assert "pair 1: 3 rows right under first only, 1 under second only; McNemar p = 0.625" in printed
    saved = json.loads(out.read_text())
    assert saved["rows"] == 6 and saved["files"]["first"] == [str(first)] and saved["metric"] == "predicted"
    assert saved["interval"][0] <= saved["difference"] <= saved["interval"][1]


def test_rows_are_joined_by_id_and_pairs_by_position(tmp_path, capsys):
    a1 = write_rows(tmp_path / "a1.jsonl", {"piqa": [1, 1, 1]})
    a2 = write_rows(tmp_path / "a2.jsonl", {"piqa": [1, 1, 1]})
    b1 = write_rows(tmp_path / "b1.jsonl", {"piqa": [0, 0]})  # row piqa/2 not scored: left out everywhere
    b2 = write_rows(tmp_path / "b2.jsonl", {"piqa": [0, 0, 0]})
    args = ["compare", "--first", str(a1), str(a2), "--second", str(b1), str(b2), "--paper", "5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "+100.00 points, 95% interval [+100.00, +100.00] over 2 pair(s) x 2 rows" in printed
    assert "(1 row(s) not scored by every run left out)" in printed
    assert "verdict on the claim first minus second = +5.00 (--paper): reproduced" in printed


def test_metric_choice(tmp_path, capsys):
    rows = {"piqa": [1, 1, 0, 0]}
    first, second = write_rows(tmp_path / "a.jsonl", rows), write_rows(tmp_path / "b.jsonl", rows, 1)
    assert main(["compare", "--first", str(first), "--second", str(second), "--metric", "acc_norm"]) == 0
    assert "| piqa | 50.00 | 50.00 | +0.00 |" in capsys.readouterr().out  # B's acc_norm flips every answer


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (["--first", str(d / "a.jsonl")], ["--second"]), "expected at least one argument"),
        (lambda d: ([str(d / "a.jsonl"), str(d / "a.jsonl")], [str(d / "a.jsonl")]), "as many runs each"),
        (
            lambda d: ([str(d / "missing.jsonl")], [str(d / "a.jsonl")]),
            "missing.jsonl: no such file or folder",
        ),
        (lambda d: ([str(d)], [str(d / "a.jsonl")]), "expected one test_rows.jsonl in the folder, found 0"),
        (lambda d: ([str(d / "bad.jsonl")], [str(d / "a.jsonl")]), "bad.jsonl, line 1: not a row outcome"),
        (lambda d: ([str(d / "other.jsonl")], [str(d / "a.jsonl")]), "share no row id"),
    ],
)
def test_errors_name_the_file_or_option(tmp_path, capsys, make, message):
    write_rows(tmp_path / "a.jsonl", {"piqa": [1, 0]})
    write_rows(tmp_path / "other.jsonl", {"arc": [1, 0]})
    (tmp_path / "bad.jsonl").write_text('{"row_id": "piqa/0"}\n')
    first, second = make(tmp_path)
    if first and first[0] == "--first":
        argv = ["compare", *first, *second]
        with pytest.raises(SystemExit):
            main(argv)
    else:
        assert main(["compare", "--first", *first, "--second", *second]) == 2
    assert message in capsys.readouterr().err


def test_compare_uses_the_pages_rule(tmp_path, capsys):
    """Three pairs whose seeds disagree: the printed and saved interval are `difference_interval`'s (the rule
    the results page uses) on the same rows, with its degrees of freedom; two pairs get a caution."""
    from gatera_lab.evaluation.difference_interval import difference_interval

    firsts = [[1, 1, 1, 0, 1, 0], [1, 0, 0, 0, 1, 0], [1, 1, 1, 1, 1, 1]]
    seconds = [[1, 0, 1, 0, 0, 0], [1, 1, 0, 1, 1, 0], [1, 1, 0, 1, 0, 1]]
    paths = {"a": [], "b": []}
    for index, (a, b) in enumerate(zip(firsts, seconds, strict=True)):
        paths["a"].append(str(write_rows(tmp_path / f"a{index}.jsonl", {"piqa": a[:3], "arc": a[3:]})))
        paths["b"].append(str(write_rows(tmp_path / f"b{index}.jsonl", {"piqa": b[:3], "arc": b[3:]})))
    out = tmp_path / "comparison.json"
    assert main(["compare", "--first", *paths["a"], "--second", *paths["b"], "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # rows are joined sorted by id: arc/0..2, then piqa/0..2
    deltas = [
        [100 * (x - y) for x, y in zip(a[3:] + a[:3], b[3:] + b[:3], strict=True)]
        for a, b in zip(firsts, seconds, strict=True)
    ]
    expected = difference_interval(deltas, ["arc"] * 3 + ["piqa"] * 3)
    saved = json.loads(out.read_text())
    assert saved["interval"] == pytest.approx([expected.low, expected.high])
    assert saved["degrees_of_freedom"] == pytest.approx(expected.degrees_of_freedom)
    assert saved["minimum_detectable"] == pytest.approx(expected.minimum_detectable)
    assert saved["t_multiplier"] == pytest.approx(expected.multiplier) and saved["caution"] is None
    assert f"on {expected.degrees_of_freedom:.1f} degrees of freedom" in printed and "caution" not in printed
    assert main(["compare", "--first", *paths["a"][:2], "--second", *paths["b"][:2]]) == 0
    assert "caution: two seeds, so the seed spread rests on 1 degree of freedom" in capsys.readouterr().out
