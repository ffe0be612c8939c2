"""The results page's pictures of the gates, chosen from the records (drawn by `report_figures`).

Returns the Markdown that shows them and the figures by file name (``<prefix>*.png``).
"""

from __future__ import annotations

from matplotlib.figure import Figure

from gatera_lab.experiments.report_data import (
    ReportData,
)
from gatera_lab.experiments.report_figures import (
    entropy_histogram_figure,
    heatmap_figure,
    prefill_decode_figure,
)


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
    settings = {label: records for label, records in settings.items() if records}
    if settings:
        figures[f"{data.prefix}prefill_decode.png"] = prefill_decode_figure(settings)
        lines.append(f"![mean gates: prompt vs response, prefill vs decode]({data.prefix}prefill_decode.png)")
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
