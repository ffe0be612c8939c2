"""The claims picture: one row per paired comparison, in the page's order, coloured by verdict."""

from __future__ import annotations

from gatera_lab.experiments.claims import compare
from gatera_lab.experiments.report_forest import VERDICT_COLOURS, forest_figure
from tests.test_experiments import a_tested_run


def test_forest_rows_are_the_paired_comparisons_top_down_coloured_by_verdict():
    better = compare("A minus B", [{42: a_tested_run(0.55)}], [{42: a_tested_run(0.50)}], None)
    worse = compare("C minus D", [{42: a_tested_run(0.45)}], [{42: a_tested_run(0.50)}], 0.8)
    unpaired = compare("E minus F", [{42: a_tested_run(0.5, rows=False)}], [{42: a_tested_run(0.5)}], None)
    missing = compare("G minus H", [{42: a_tested_run(0.5)}], [{43: a_tested_run(0.5)}], None)
    assert forest_figure([unpaired, missing]) is None
    figure = forest_figure([better, unpaired, worse, missing])
    (axes,) = figure.axes
    labels = [label.get_text() for label in axes.get_yticklabels()]
    ticks = sorted(zip(axes.get_yticks(), labels, strict=True))
    assert [label for _, label in ticks] == ["C minus D", "A minus B"]  # the first comparison on top
    assert (better.verdict, worse.verdict) == ("reproduced", "contradicted")
    horizontal = [line for line in axes.lines if len(set(line.get_ydata())) == 1]  # not the line at 0
    intervals = [line for line in horizontal if len(line.get_xdata()) == 2]
    colours = {tuple(line.get_ydata())[0]: line.get_color() for line in intervals}
    assert colours == {1: VERDICT_COLOURS["reproduced"], 0: VERDICT_COLOURS["contradicted"]}
    assert [tuple(line.get_xdata()) for line in axes.lines if line.get_marker() == "D"] == [(0.8,)]
