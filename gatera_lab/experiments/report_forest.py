"""The results page's picture of the accuracy claims: each difference with its 95% interval, beside the paper.

One row per paired comparison (the claims file's, the entropy sweep's and the variants'), top to bottom in the
page's order: a dot at the measured difference ``d`` (points), a bar over its 95% interval
(`gatera_lab.evaluation.difference_interval`), a diamond at the paper's published difference where there is
one, and the row's colour by its verdict. The zero-shot comparisons are left out: they lie far from 0 and are
clear on the page. A comparison without paired statistics (missing runs) has no row.
"""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from gatera_lab.experiments.claims import Comparison

VERDICT_COLOURS = {
    "reproduced": "tab:green",
    "supported": "tab:green",
    "contradicted": "firebrick",
    "refuted": "firebrick",
    "smaller than the paper's effect": "darkorange",
}
LABEL_CHARACTERS = 70


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"


def forest_figure(comparisons: list[Comparison]) -> Figure | None:
    """The picture of ``comparisons`` that have paired statistics; None when none has."""
    shown = [comparison for comparison in comparisons if comparison.paired is not None]
    if not shown:
        return None
    figure = Figure(figsize=(11, 1.2 + 0.42 * len(shown)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    rows = range(len(shown) - 1, -1, -1)  # the first comparison on top
    for row, comparison in zip(rows, shown, strict=True):
        paired, colour = comparison.paired, VERDICT_COLOURS.get(comparison.verdict, "grey")
        axes.plot([paired.low, paired.high], [row, row], color=colour, linewidth=2.5)
        axes.plot([paired.difference], [row], "o", color=colour, markersize=6)
        if comparison.paper is not None:
            axes.plot([comparison.paper], [row], "D", color="black", markersize=5, fillstyle="none")
    axes.axvline(0.0, color="grey", linewidth=0.8)
    axes.set_yticks(list(rows), [_short(comparison.label) for comparison in shown], fontsize=8)
    axes.set_ylim(-0.7, len(shown) - 0.3)
    axes.set_xlabel("difference in average test accuracy (points); bar: 95% interval")
    axes.set_title("Accuracy claims, paired by seed and row")
    axes.grid(axis="x", alpha=0.3)
    verdicts = dict.fromkeys(comparison.verdict for comparison in shown)
    handles = [
        Line2D([], [], color=VERDICT_COLOURS.get(verdict, "grey"), marker="o", linewidth=2.5, label=verdict)
        for verdict in verdicts
    ]
    if any(comparison.paper is not None for comparison in shown):
        handles.append(
            Line2D([], [], color="black", marker="D", fillstyle="none", linestyle="", label="the paper")
        )
    axes.legend(handles=handles, fontsize=8, loc="best")
    height = figure.get_figheight()
    figure.subplots_adjust(left=0.42, right=0.98, bottom=0.65 / height, top=1 - 0.4 / height)
    return figure
