"""A fit's gate trace read back from TensorBoard events, as a run record keeps it."""

from __future__ import annotations

import math

from torch.utils.tensorboard import SummaryWriter

from gatera_lab.experiments.gate_trace import read_gate_trace, trace_point


def write_events(folder, points: dict[str, list[tuple[int, float]]]) -> None:
    writer = SummaryWriter(str(folder))
    for tag, values in points.items():
        for step, value in values:
            writer.add_scalar(tag, value, step)
    writer.close()


def test_the_series_by_step_with_the_last_value_of_a_repeated_step(tmp_path):
    write_events(
        tmp_path,
        {
            "gates/all/mean": [(0, 0.49), (50, 0.6), (100, 0.7), (50, 0.65)],  # step 50 again: a resumed fit
            "gates/all/near_binary": [(0, 0.01), (100, 0.2)],  # no point at step 50
            "train/loss": [(0, 3.0)],
        },
    )
    trace = read_gate_trace(tmp_path)
    assert trace["steps"] == [0, 50, 100]
    assert trace["mean"] == [0.49, 0.65, 0.7]
    assert trace["near_binary"] == [0.01, None, 0.2]
    assert trace["prompt_mean"] == [None, None, None]  # not logged at all
    record = {"fit": {"gate_trace": trace}}
    assert trace_point(record, "mean", 0) == 0.49 and trace_point(record, "mean", -1) == 0.7
    assert math.isnan(trace_point(record, "near_binary", 1)) and math.isnan(trace_point(record, "mean", 5))


def test_no_trace_without_gate_events(tmp_path):
    write_events(tmp_path, {"train/loss": [(0, 3.0), (10, 2.0)]})
    assert read_gate_trace(tmp_path) is None  # an ungated fit
    assert read_gate_trace(tmp_path / "missing") is None
    for record in ({"fit": None}, {"fit": {"gate_trace": None}}, {}):
        assert math.isnan(trace_point(record, "mean", 0))
