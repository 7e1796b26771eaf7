"""Matplotlib figures for reports, built without pyplot (no global state, any backend), in colours that
read on JupyterLab's light and dark themes (theme.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from .. import theme


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _short(label: str, n: int = 28) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def f1_bars(labels: Sequence[str], f1: Sequence[float], title: str = "F1 per label", ax=None):
    """Horizontal bars of each label's F1 score."""
    fig = None
    if ax is None:
        fig = _figure(5.5, 0.35 * len(labels) + 1.2)
        ax = fig.add_subplot()
    y = range(len(labels))
    ax.barh(list(y), list(f1), color=theme.PLOT_BLUE)
    ax.set_yticks(list(y), [_short(lab) for lab in labels])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 score")
    ax.set_title(title)
    for i, v in enumerate(f1):
        ax.text(min(v + 0.01, 0.9), i, f"{v:.2f}", va="center", fontsize=8, color=theme.PLOT_TEXT)
    return fig or ax.figure


def confusion_heatmap(cm, title: str = "Confusion matrix", ax=None):
    """A heat map of a confusion-matrix DataFrame (rows true, columns predicted) with its counts."""
    fig = None
    n_rows, n_cols = cm.shape
    if ax is None:
        fig = _figure(0.5 * n_cols + 2.8, 0.45 * n_rows + 2.0)
        ax = fig.add_subplot()
    values = cm.to_numpy()
    im = ax.imshow(values, cmap=theme.PLOT_CMAP, aspect="auto")
    ax.set_xticks(range(n_cols), [_short(str(c), 18) for c in cm.columns], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n_rows), [_short(str(r), 22) for r in cm.index], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = values.max() if values.size else 0
    if n_rows * n_cols <= 400:
        for i in range(n_rows):
            for j in range(n_cols):
                ax.text(j, i, str(values[i, j]), ha="center", va="center", fontsize=7,
                        color="black" if values[i, j] > top / 2 else "white")  # viridis: dark low, light high
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    return fig or ax.figure


def f1_base_vs_tuned(labels: Sequence[str], base: Sequence[float], tuned: Sequence[float],
                     title: str | None = None, baseline: Sequence[float] | None = None, baseline_name: str = ""):
    """Per-label bars: base, tuned and, when given, the baseline (e.g. TF-IDF + linear SVM)."""
    import numpy as np

    series = [(base, theme.PLOT_GREY, "base"), (tuned, theme.PLOT_BLUE, "tuned")]
    if baseline is not None:
        series.append((baseline, theme.PLOT_ORANGE, baseline_name or "baseline"))
    title = title or "F1 per label: " + " vs ".join(("base", "tuned", "baseline")[: len(series)])
    fig = _figure(6.0, (0.45 if baseline is None else 0.6) * len(labels) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    height = 0.8 / len(series)
    for i, (values, color, name) in enumerate(series):
        ax.barh(y + (i - (len(series) - 1) / 2) * height, values, height=height, color=color, label=name)
    ax.set_yticks(y, [_short(lab) for lab in labels])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1 score")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def figure_html(fig) -> str:
    """An inline <img> of the figure (PNG, base64, transparent), for _repr_html_."""
    theme.style_figure(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, transparent=True)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" style="max-width:100%"/>'
