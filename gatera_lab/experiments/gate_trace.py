"""A fit's gate statistics over training, read back from its TensorBoard events for the run's record.

`GateStatisticsMonitor` logs, every ``every_n_steps`` optimizer steps, the gates of one training micro-batch
(real tokens only): ``gates/all/mean`` (mean g over every gated module and token), ``gates/all/near_binary``
(share with g < 0.1 or g > 0.9) and the means on prompt and on response tokens. The first point (step 0) is
logged before the first optimizer step, so it is the gates at initialisation; a record keeps the series as::

    gate_trace = {"steps": [0, 50, ...], "mean": [...], "near_binary": [...],
                  "prompt_mean": [...], "response_mean": [...]}

so the results page can say how far training moved the gates, not only where they ended.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

TRACE_TAGS = {
    "mean": "gates/all/mean",
    "near_binary": "gates/all/near_binary",
    "prompt_mean": "gates/all/prompt_mean",
    "response_mean": "gates/all/response_mean",
}


def read_gate_trace(log_dir: str | Path) -> dict[str, list[Any]] | None:
    """The gate series of the TensorBoard events under ``log_dir``; None where no gate was logged
    (an ungated method, or a folder without events)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not Path(log_dir).is_dir():
        return None
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    logged = set(events.Tags().get("scalars", []))
    if TRACE_TAGS["mean"] not in logged:
        return None
    by_step: dict[str, dict[int, float]] = {
        key: {point.step: point.value for point in events.Scalars(tag)}  # a resumed fit's repeat: the last
        for key, tag in TRACE_TAGS.items()
        if tag in logged
    }
    steps = sorted(by_step["mean"])
    trace: dict[str, list[Any]] = {"steps": steps}
    for key in TRACE_TAGS:
        values = by_step.get(key, {})
        # a non-finite value stays NaN here; `write_record` stores it as null (`json_safe`)
        trace[key] = [round(values[step], 5) if step in values else None for step in steps]
    return trace


def trace_point(record: dict[str, Any], key: str, index: int) -> float:
    """Point ``index`` of a record's gate series ``key`` (0: initialisation, -1: the last logged step);
    NaN where the record has no such series or point."""
    series = ((record.get("fit") or {}).get("gate_trace") or {}).get(key) or []
    try:
        value = series[index]
    except IndexError:
        return math.nan
    return math.nan if value is None else float(value)
