"""The results page's pictures of the gates, chosen from the records and drawn from their gate statistics.

- `prefill_decode_figure`: per gated setting, the mean gate on prompt and on response tokens of held-out
  rows, and on the prefill and decode passes of the probe generation (bars: mean over seeds, whiskers: std);
- `entropy_histogram_figure`: gate histograms (shares per bin) on prompt and on response tokens, one line
  per entropy weight lambda;
- `heatmap_figure`: the probe generation's layer x token gates (`gate_figure` of the diagnostics);
- `trace_figure`: per gated setting, the mean gate and the near-binary share of the training batches the
  fit's `GateStatisticsMonitor` logged (`gatera_lab.experiments.gate_trace`), step 0 being the initialisation.

`pictures` returns the Markdown that shows them and the figures by file name (``<prefix>*.png``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gatera_lab.diagnostics.generation_trace import GateTrace
from gatera_lab.diagnostics.plotting import gate_figure
from gatera_lab.experiments.gate_trace import trace_point
from gatera_lab.experiments.report_data import ReportData
from gatera_lab.experiments.seed_results import gate_value, mean_std

BAR_KEYS = (
    ("prompt_mean", "prompt tokens (held-out rows)", "tab:blue"),
    ("response_mean", "response tokens (held-out rows)", "firebrick"),
    ("probe.prefill_mean", "probe prefill pass", "lightsteelblue"),
    ("probe.decode_mean", "probe decode passes", "salmon"),
)


def _figure(width_px: int, height_px: int) -> Figure:
    figure = Figure(figsize=(width_px / 100, height_px / 100), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def prefill_decode_figure(settings: dict[str, list[dict[str, Any]]]) -> Figure:
    """``settings``: label -> the records (seeds) of one gated setting."""
    labels = list(settings)
    figure = _figure(max(700, 170 * len(labels) + 200), 480)
    axes = figure.add_subplot(1, 1, 1)
    width = 0.8 / len(BAR_KEYS)
    positions = np.arange(len(labels))
    for index, (key, name, color) in enumerate(BAR_KEYS):
        means, stds = [], []
        for label in labels:
            values = [gate_value(record, key) for record in settings[label]]
            values = [value for value in values if not math.isnan(value)]
            means.append(np.mean(values) if values else np.nan)
            stds.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
        axes.bar(
            positions + (index - 1.5) * width, means, width, yerr=stds, label=name, color=color, capsize=3
        )
    axes.set_xticks(positions)
    axes.set_xticklabels(labels, fontsize=8)
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("mean gate g")
    axes.set_title("Gates at the end of training: prompt vs response tokens, prefill vs decode", fontsize=10)
    axes.legend(fontsize=8, loc="upper left")
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9)
    return figure


def entropy_histogram_figure(histograms: dict[str, dict[str, Any]]) -> Figure:
    """``histograms``: label (e.g. ``lambda = 0``) -> ``{"bins": n, "prompt": counts, "response": counts}``."""
    figure = _figure(1100, 420)
    for index, part in enumerate(("prompt", "response")):
        axes = figure.add_subplot(1, 2, index + 1)
        for label, histogram in histograms.items():
            counts = np.asarray(histogram[part], dtype=np.float64)
            if counts.sum() == 0:
                continue
            edges = np.linspace(0.0, 1.0, int(histogram["bins"]) + 1)
            axes.stairs(counts / counts.sum(), edges, linewidth=2, label=label)
        axes.set_xlim(0.0, 1.0)
        axes.set_xlabel("gate g")
        axes.set_ylabel("share of gate values")
        axes.set_title(f"{part} tokens of held-out rows", fontsize=10)
        axes.legend(fontsize=8)
    figure.suptitle("Gate histograms at the end of training, by entropy weight lambda", fontsize=11)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.85, wspace=0.25)
    return figure


def heatmap_figure(probe: dict[str, Any], title: str) -> Figure:
    """The probe's layer x token gates as `gate_figure` draws a generation trace."""
    gates = torch.tensor(probe["layer_gates"], dtype=torch.float32)  # (L, T)
    trace = GateTrace(
        module_names=list(probe["layers"]),
        token_ids=list(range(gates.shape[1])),
        tokens=list(probe["tokens"]),
        n_prompt=int(probe["n_prompt"]),
        gates=gates,
    )
    return gate_figure(
        trace,
        "module",
        title=f"{title}: prefill mean {trace.prefill_mean:.3f} | decode mean {trace.decode_mean:.3f}",
    )


TRACE_PANELS = (("mean", "mean gate g"), ("near_binary", "share of gates < 0.1 or > 0.9"))
TRACE_STYLES = (
    ("-", "o"),
    ("--", "s"),
    (":", "^"),
    ("-.", "D"),
    ("-", "v"),
    ("--", "x"),
)  # overlaps stay visible


def trace_figure(settings: dict[str, list[dict[str, Any]]]) -> Figure | None:
    """``settings``: label -> the records (seeds) of one gated setting; None when none has a gate trace.

    A line per setting: the mean over its seeds at each logged step (the steps of its first traced record)."""
    figure = _figure(1100, 420)
    panels = [figure.add_subplot(1, 2, index + 1) for index in range(len(TRACE_PANELS))]
    drawn = False
    for number, (label, records) in enumerate(settings.items()):
        traced = [record for record in records if (record.get("fit") or {}).get("gate_trace")]
        if not traced:
            continue
        steps = traced[0]["fit"]["gate_trace"]["steps"]
        for axes, (key, _) in zip(panels, TRACE_PANELS, strict=True):
            means = [
                mean_std([trace_point(record, key, index) for record in traced])[0]
                for index in range(len(steps))
            ]
            line, marker = TRACE_STYLES[number % len(TRACE_STYLES)]
            axes.plot(
                steps, means, line, marker=marker, markersize=4, label=f"{label} ({len(traced)} run(s))"
            )
        drawn = True
    if not drawn:
        return None
    for axes, (_, name) in zip(panels, TRACE_PANELS, strict=True):
        axes.set_xlabel("optimizer step")
        axes.set_ylabel(name)
        axes.set_ylim(0.0, 1.0)
        axes.legend(fontsize=8)
    figure.suptitle("Gates during training (one training batch every logged step; step 0: initialisation)")
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.87, wspace=0.25)
    return figure


def pictures(data: ReportData) -> tuple[str, dict[str, Figure]]:
    """The pictures' Markdown and the figures by file name."""
    lines, figures = [], {}
    settings = {
        method: [run.record for run in runs.values() if run.record.get("gates")]
        for method, runs in data.finals.items()
    }
    for value, seeds in data.entropy.items():
        label = f"{data.spec.entropy_sweep.method} λ={value:g}"
        settings[label] = [record for record in seeds.values() if record.get("gates")]
    for variant, methods in data.variants.items():
        for method, runs in methods.items():
            settings[f"{method} ({variant})"] = [
                run.record for run in runs.values() if run.record.get("gates")
            ]
    settings = {label: records for label, records in settings.items() if records}
    if settings:
        figures[f"{data.prefix}prefill_decode.png"] = prefill_decode_figure(settings)
        lines.append(f"![mean gates: prompt vs response, prefill vs decode]({data.prefix}prefill_decode.png)")
    trace = trace_figure(settings)
    if trace is not None:
        figures[f"{data.prefix}gate_trace.png"] = trace
        lines.append(f"![gates during training]({data.prefix}gate_trace.png)")
    histograms = {}
    for value, seeds in data.entropy.items():
        record = next(
            (record for record in seeds.values() if (record.get("gates") or {}).get("histogram")), None
        )
        if record is not None:
            histograms[f"λ = {value:g} (seed {record['seed']})"] = record["gates"]["histogram"]
    if histograms:
        figures[f"{data.prefix}gate_histograms.png"] = entropy_histogram_figure(histograms)
        lines.append(f"![gate histograms by entropy weight]({data.prefix}gate_histograms.png)")
    for value, seeds in data.entropy.items():
        record = next((record for record in seeds.values() if (record.get("gates") or {}).get("probe")), None)
        if record is not None:
            name = f"{data.prefix}gate_heatmap_lambda{value:g}.png"
            title = f"{record['method']} λ={value:g} seed {record['seed']}, layer x token gates"
            figures[name] = heatmap_figure(record["gates"]["probe"], title)
            lines.append(f"![probe gate heatmap, lambda {value:g}]({name})")
    if not data.entropy:  # no entropy sweep recorded: a heatmap of a final gated run instead
        for method, runs in data.finals.items():
            run = next((run for run in runs.values() if (run.record.get("gates") or {}).get("probe")), None)
            if run is not None:
                name = f"{data.prefix}gate_heatmap_{method}.png"
                figures[name] = heatmap_figure(run.record["gates"]["probe"], f"{method} seed {run.run.seed}")
                lines.append(f"![probe gate heatmap, {method}]({name})")
                break
    text = "\n\n".join(lines) + "\n" if lines else "No gated run with gate statistics is recorded yet.\n"
    return text, figures
