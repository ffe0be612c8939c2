"""Pictures of gate values: a token-by-module heatmap of a generation and histograms of its gates.

Drawn with matplotlib's Agg canvas (no display, no pyplot global state). The figure's size in pixels is a
function of the token and row counts only (`gate_figure_size_px`), so a picture's layout is predictable:
``16`` px per token (at least 800, at most 12,000 px wide) and ``14`` px per heatmap row (the heatmap at
least 160, at most 3,000 px tall), plus fixed margins and a 220 px histogram panel.

Top panel: gate values (0 = adapter off, 1 = fully on) with the tokens on the x axis, prompt tokens then
generated tokens, the prefill/decode boundary marked by a red line; one row per gated module (or per layer).
Bottom panel: histograms of the gates on prompt tokens (prefill) and on generated tokens (decode).
`gate_histogram_figure` draws a training batch's gates on prompt and response tokens, one panel per group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gatera_lab.diagnostics.generation_trace import GateTrace
from gatera_lab.io.atomic_write import atomic_file

DPI = 100
TOKEN_PX, ROW_PX = 16, 14
LEFT_PX, RIGHT_PX, TOP_PX, BOTTOM_PX = 110, 110, 50, 50
TOKEN_LABEL_PX = 120  # rotated token labels under the heatmap, and the gap to the histogram
HISTOGRAM_PX = 220
WIDTH_RANGE = (800, 12000)
HEATMAP_RANGE = (160, 3000)


def _clip(value: int, bounds: tuple[int, int]) -> int:
    return min(max(value, bounds[0]), bounds[1])


def gate_figure_size_px(n_tokens: int, n_rows: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of `gate_figure` for ``n_tokens`` tokens and ``n_rows`` heatmap rows."""
    width = _clip(LEFT_PX + RIGHT_PX + TOKEN_PX * n_tokens, WIDTH_RANGE)
    heatmap = _clip(ROW_PX * n_rows, HEATMAP_RANGE)
    return width, TOP_PX + heatmap + TOKEN_LABEL_PX + HISTOGRAM_PX + BOTTOM_PX


def token_label(text: str) -> str:
    """A token's text as an axis label: newlines and tabs escaped, spaces as ``·``, ``$`` not mathtext."""
    text = text.replace("\n", "\\n").replace("\t", "\\t").replace(" ", "·").replace("$", r"\$")
    return text or "''"


def _every(count: int, pixels_each: float, minimum_px: float) -> int:
    """Label every k-th tick so that labels are at least ``minimum_px`` apart."""
    return max(1, int(np.ceil(minimum_px / max(pixels_each, 1e-9)))) if count else 1


def gate_figure(trace: GateTrace, rows: str = "module", title: str | None = None) -> Figure:
    """The heatmap and histogram figure of ``trace`` (see the module docstring)."""
    labels, values = trace.rows(rows)
    values = values.numpy()  # (R, T)
    n_rows, n_tokens = values.shape
    width, height = gate_figure_size_px(n_tokens, n_rows)
    heatmap_px = _clip(ROW_PX * n_rows, HEATMAP_RANGE)
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    plot_width = width - LEFT_PX - RIGHT_PX

    heat_bottom = BOTTOM_PX + HISTOGRAM_PX + TOKEN_LABEL_PX
    heat = figure.add_axes((LEFT_PX / width, heat_bottom / height, plot_width / width, heatmap_px / height))
    image = heat.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    heat.axvline(trace.n_prompt - 0.5, color="red", linewidth=2)
    step = _every(n_tokens, plot_width / max(n_tokens, 1), 11)
    ticks = list(range(0, n_tokens, step))
    heat.set_xticks(ticks)
    heat.set_xticklabels([token_label(trace.tokens[index]) for index in ticks], rotation=90, fontsize=8)
    for tick, index in zip(heat.get_xticklabels(), ticks, strict=True):
        tick.set_color("black" if index < trace.n_prompt else "firebrick")
    row_step = _every(n_rows, heatmap_px / max(n_rows, 1), 10)
    heat.set_yticks(list(range(0, n_rows, row_step)))
    heat.set_yticklabels(labels[::row_step], fontsize=7)
    heat.set_title(
        title
        or (
            f"gate g per token: prefill {trace.n_prompt} prompt tokens (mean {trace.prefill_mean:.3f}) | "
            f"decode {trace.n_generated} generated tokens (mean {trace.decode_mean:.3f})"
        ),
        fontsize=10,
    )
    colorbar_axes = figure.add_axes(
        ((width - RIGHT_PX + 20) / width, heat_bottom / height, 15 / width, heatmap_px / height)
    )
    figure.colorbar(image, cax=colorbar_axes, label="gate g")

    histogram = figure.add_axes(
        (LEFT_PX / width, BOTTOM_PX / height, min(plot_width, 700) / width, (HISTOGRAM_PX - 40) / height)
    )
    bins = np.linspace(0.0, 1.0, 41)
    for part, name, color in (
        (values[:, : trace.n_prompt], "prefill (prompt tokens)", "tab:blue"),
        (values[:, trace.n_prompt :], "decode (generated tokens)", "firebrick"),
    ):
        flat = part.reshape(-1)
        share_histogram(histogram, flat, bins, color, f"{name}, n={flat.size}")
    histogram.set_xlim(0.0, 1.0)
    histogram.set_xlabel("gate g", fontsize=9)
    histogram.set_ylabel("share of values", fontsize=9)
    histogram.legend(fontsize=8)
    return figure


HISTOGRAM_GRID_PX = (1200, 700)


def share_histogram(axes: Any, values: np.ndarray, bins: np.ndarray, color: str, label: str) -> None:
    """A step histogram of ``values`` (N,) normalised to shares of N; nothing for an empty array."""
    if values.size:
        axes.hist(
            values,
            bins=bins,
            weights=np.full(values.size, 1.0 / values.size),
            histtype="step",
            linewidth=2,
            color=color,
            label=label,
        )


def gate_histogram_figure(groups: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """One panel per group (e.g. ``all`` and each module type): histograms of its gates on prompt tokens and
    on response tokens, each normalised to shares. Always `HISTOGRAM_GRID_PX` pixels (up to 3 x 3 panels).

    Args:
        groups: ``{group: (prompt gate values (N,), response gate values (M,))}``.
        title: the figure's title.
    """
    width, height = HISTOGRAM_GRID_PX
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    names = list(groups)[:9]
    columns = min(3, max(1, len(names)))
    rows = max(1, -(-len(names) // columns))
    bins = np.linspace(0.0, 1.0, 41)
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        for values, label, color in zip(
            groups[name], ("prompt", "response"), ("tab:blue", "firebrick"), strict=True
        ):
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            mean = f"{values.mean():.2f}" if values.size else "-"
            share_histogram(axes, values, bins, color, f"{label} (mean {mean})")
        axes.set_xlim(0.0, 1.0)
        axes.set_title(name, fontsize=9)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.05, right=0.98, top=0.9, bottom=0.07, hspace=0.45, wspace=0.2)
    return figure


def figure_rgb(figure: Figure) -> np.ndarray:
    """The rendered figure as an (H, W, 3) uint8 array (for TensorBoard's ``add_image``)."""
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG atomically and durably (`gatera_lab.io.atomic_write.atomic_file`)."""
    path = Path(path)
    with atomic_file(path, "wb") as file:
        figure.savefig(file, format="png", dpi=DPI)
    return path
