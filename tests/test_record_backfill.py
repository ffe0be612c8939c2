"""`backfill_records`: a field added to the wanted records only, under each run's claim, atomically."""

from __future__ import annotations

from gatera_lab.experiments.record_backfill import backfill_records, print_outcome
from gatera_lab.experiments.records import load_records, write_record
from gatera_lab.experiments.run_locks import claim_run


def test_added_held_missing_and_untouched(tmp_path, capsys):
    records, runs = tmp_path / "records", tmp_path / "runs"
    records.mkdir(), runs.mkdir()
    for name, source in (("done", "a"), ("open", "b"), ("gone", None), ("busy", "c")):
        write_record(records, {"name": name, "source": source} | ({"field": "old"} if name == "done" else {}))

    def fill(record: dict) -> bool:
        if record["source"] is None:
            return False
        record["field"] = record["source"] * 2
        return True

    with claim_run(runs, "busy") as mine:  # a worker writing this run's record holds its claim
        assert mine
        outcome = backfill_records(records, runs, lambda record: "field" not in record, fill)
    assert outcome == {"added": ["open"], "held": ["busy"], "missing": ["gone"]}
    after = load_records(records)
    assert after["open"]["field"] == "bb" and after["done"]["field"] == "old"  # never rewritten
    assert "field" not in after["gone"] and "field" not in after["busy"]
    assert not list(records.glob(".*.tmp"))  # atomic writes leave no temporary file

    print_outcome(outcome, {"added": "filled", "held": "held, left"}, records)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["open: filled", "busy: held, left", f"1 record(s) updated in {records}"]
