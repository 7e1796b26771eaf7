"""The widgets and reports take their colours from JupyterLab's theme (jupyter_tune/theme.py): no fixed
colour in their HTML, and charts on a transparent background (the browser test checks how they look)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

import jupyter_tune
from jupyter_tune import theme
from jupyter_tune.widgets import JobView
from jupyter_tune.widgets.charts import histogram_png, metrics_png
from tests.support.fixtures import dataset_stats, make_job, metric_rows

PACKAGE = Path(jupyter_tune.__file__).parent
# A colour literal in an HTML style: #abc / #aabbcc, or a named colour set with color: / background:.
FIXED = re.compile(r"(?<!&)#[0-9a-fA-F]{3,8}\b|(?:color|background):\s*(?:white|black)\b")
THEMED_SOURCES = [*sorted((PACKAGE / "widgets").glob("*.py")), PACKAGE / "evaluation" / "report.py",
                  PACKAGE / "evaluation" / "compare.py", PACKAGE / "export" / "parity.py"]
# Written while issue 16 was being fixed; they should take their colours from jupyter_tune/theme.py too.
NOT_YET_THEMED: dict[str, str] = {}  # file name -> why it still has fixed colours


def fixed_colors(html: str) -> list[str]:
    """Colour literals outside a var(--jp-..., fallback) (the fallback is for pages without JupyterLab)."""
    return FIXED.findall(re.sub(r"var\(--jp-[a-z0-9-]+,[^)]*\)", "var()", html))


@pytest.mark.parametrize("path", THEMED_SOURCES, ids=lambda p: p.name)
def test_no_fixed_colours_in_the_sources(path):
    found = fixed_colors(path.read_text(encoding="utf-8"))
    if found and path.parent.name == "widgets" and path.name in NOT_YET_THEMED:
        pytest.xfail(NOT_YET_THEMED[path.name])
    assert not found, path


def test_the_rendered_view_has_only_theme_colours(store, views):
    make_job(store, "themed-ok", "JOB_STATE_SUCCEEDED", steps=10)
    make_job(store, "themed-bad", "JOB_STATE_FAILED", steps=3, error={"message": "boom"})
    for job_id in ("themed-ok", "themed-bad"):
        v = JobView(job_id, live=False)
        views.append(v)
        html = "".join(str(c.value) for c in (v.header.title, v.header.progress_text, v.header.error,
                                               v.supervise.summary, v.dataset.content, v.details.content,
                                               v.test.status))
        assert "var(--jp-" in html
        assert not fixed_colors(html), job_id


def test_charts_are_transparent_and_use_the_plot_palette():
    from PIL import Image

    for png in (metrics_png(metric_rows(12)), histogram_png(dataset_stats()["train"]["user_input_token_distribution"],
                                                            "Input tokens")):
        image = Image.open(io.BytesIO(png)).convert("RGBA")
        assert image.getpixel((0, 0))[3] == 0  # the corner shows the page behind: light or dark
        assert image.getpixel((image.width - 1, image.height - 1))[3] == 0


def test_style_figure_greys_the_text_of_subfigures():
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    fig = Figure()
    sub = fig.subfigures(1, 2)[1]
    ax = sub.add_subplot()
    ax.set_title("t")
    ax.plot([1, 2], label="x")
    ax.legend()
    theme.style_figure(fig)
    assert to_hex(ax.title.get_color()) == theme.PLOT_TEXT
    assert to_hex(ax.get_legend().get_texts()[0].get_color()) == theme.PLOT_TEXT
    assert sub.patch.get_alpha() == 0.0
