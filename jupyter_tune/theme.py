"""Colours that follow JupyterLab's light and dark themes: one place for the widgets and the reports.

HTML uses JupyterLab's ``--jp-*`` CSS variables, each with the light theme's value as a fallback for
pages without JupyterLab's stylesheet (nbviewer, an HTML export). Charts are PNGs, which no CSS reaches:
`style_figure` gives them a transparent background, and the plot colours below are mid-tones with
neutral grey text, which read on white and on JupyterLab Dark alike.

Imports nothing: every layer may use it.
"""

from __future__ import annotations

from typing import Any

# -- HTML (inline styles) --
TEXT = "var(--jp-ui-font-color1, rgba(0, 0, 0, 0.87))"
MUTED = "var(--jp-ui-font-color2, #5f6368)"           # secondary text
SURFACE = "var(--jp-layout-color2, #eeeeee)"          # boxes: code, log lines, answers
BORDER = "var(--jp-border-color2, #e0e0e0)"
BRAND = "var(--jp-brand-color1, #1976d2)"
ERROR = "var(--jp-error-color1, #d32f2f)"
SUCCESS = "var(--jp-success-color1, #388e3c)"
WARN = "var(--jp-warn-color1, #f57c00)"
NEUTRAL = "var(--jp-layout-color4, #757575)"          # mid grey in both themes (badges)
ON_COLOR = "var(--jp-ui-inverse-font-color0, #ffffff)"  # text on BRAND / ERROR / SUCCESS / WARN / NEUTRAL
MONO = "var(--jp-code-font-family, monospace)"


def tint(color: str, percent: int) -> str:
    """`color` at `percent` % over whatever is behind it: a light wash on a light page, a dark one on a
    dark page (JupyterLab's *-color3 variables stay light in the dark theme)."""
    return f"color-mix(in srgb, {color} {percent}%, transparent)"


ERROR_SURFACE = tint(ERROR, 12)
TRAINED_SURFACE = tint(SUCCESS, 22)

# Inline styles used in several places.
MUTED_STYLE = f"color:{MUTED}"
ERROR_STYLE = f"color:{ERROR}"
SUCCESS_STYLE = f"color:{SUCCESS}"
BOX_STYLE = f"background:{SURFACE};color:{TEXT};border:1px solid {BORDER};border-radius:4px"

# -- matplotlib (PNG: no CSS) --
PLOT_TEXT = "#8c8c8c"      # titles, labels, ticks, legends: neutral grey
PLOT_BLUE = "#4a90e2"
PLOT_ORANGE = "#f0883e"
PLOT_GREEN = "#3fb950"
PLOT_GREY = "#9aa0a6"
# Runs side by side (compare_jobs): mid-tones that stay apart, and readable on white and on dark grey.
PLOT_SERIES = ("#4a90e2", "#f0883e", "#3fb950", "#e5534b", "#a371f7", "#39c5cf", "#db61a2", "#d4a72c",
               "#9aa0a6", "#6e7781")
PLOT_CMAP = "viridis"      # no white end: a cell with 0 is not a white box on a dark page


def style_figure(fig: Any) -> Any:
    """Make a finished matplotlib figure readable on both themes: transparent figure and axes, grey
    text, ticks, spines and legends. Per figure (no rcParams: charts are drawn from background threads)."""
    figures = [fig]
    while figures:
        f = figures.pop()
        f.patch.set_alpha(0.0)
        figures.extend(getattr(f, "subfigs", []))
        for ax in f.axes:
            ax.set_facecolor("none")
            for text in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label):
                text.set_color(PLOT_TEXT)
            ax.tick_params(colors=PLOT_TEXT, which="both")
            for spine in ax.spines.values():
                spine.set_edgecolor(PLOT_TEXT)
            legend = ax.get_legend()
            if legend is not None:
                legend.get_frame().set_facecolor("none")
                legend.get_frame().set_edgecolor(PLOT_TEXT)
                for text in legend.get_texts():
                    text.set_color(PLOT_TEXT)
    return fig
