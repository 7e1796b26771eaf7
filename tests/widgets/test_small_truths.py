"""Small truths the widgets tell (issue 38, item 7): Compare's automatic epochs and run count, its legend in the
theme's grey, the Evaluate tab's signs on differences only, a Checkpoints button wide enough for its label."""

from __future__ import annotations

import pandas as pd

from jupyter_tune import theme
from jupyter_tune.evaluation.classification import classification_metrics, confusion
from jupyter_tune.evaluation.job_report import write_report
from jupyter_tune.evaluation.report import EvaluationReport
from jupyter_tune.widgets import compare as compare_module
from jupyter_tune.widgets.checkpoints import CheckpointsSection
from jupyter_tune.widgets.compare import CompareView, table_html
from jupyter_tune.widgets.evaluate_tab import EvaluateTab, metrics_table_html
from tests.support.fixtures import make_job

LABELS = ["Cardiology", "Neurology", "Urology"]


def _epochs_cell(table: str, job_id: str) -> str:
    row = table.split(f'data-job-id="{job_id}">')[1].split("</tr>")[0]
    header = table.split("<thead>")[1].split("</thead>")[0]
    titles = [h.split(">", 1)[1].split("</th>")[0] for h in header.split("<th ")[1:]]
    cells = [c.split(">", 1)[1].split("</td>")[0] for c in row.split("<td ")[1:]]
    return cells[titles.index("epochs")]


def test_compare_shows_auto_epochs_with_the_number_the_job_chose(store, views):
    make_job(store, "auto-run", "JOB_STATE_SUCCEEDED", steps=10)  # tuning.epochs: 3, the value it resolved
    make_job(store, "fixed-run", "JOB_STATE_SUCCEEDED", steps=10)
    make_job(store, "queued-run", "JOB_STATE_QUEUED", steps=0)
    for job_id, epochs in (("auto-run", None), ("fixed-run", 5), ("queued-run", None)):
        store.update(job_id, params={**store.read_raw(job_id)["params"], "epochs": epochs})
    store.update("queued-run", tuning={})  # not started: nothing resolved yet
    v = CompareView(["auto-run", "fixed-run", "queued-run"], live=False, store=store)
    views.append(v)
    assert "epochs" in v.differing
    assert _epochs_cell(v.table.value, "auto-run") == "auto (3)"
    assert _epochs_cell(v.table.value, "fixed-run") == "5"
    assert _epochs_cell(v.table.value, "queued-run") == "auto"
    assert "—" not in _epochs_cell(v.table.value, "auto-run")


def test_table_html_without_resolved_values_says_auto():
    rows = [{"job": "a", "id": "a", "state": "JOB_STATE_SUCCEEDED", "epochs": None, "steps": 3}]
    assert ">auto<" in table_html(rows, ["epochs"], None, None)


def test_compare_counts_one_run_in_the_singular(store, views):
    make_job(store, "only-run", "JOB_STATE_SUCCEEDED", steps=10)
    v = CompareView(["only-run"], live=False, store=store)
    views.append(v)
    assert "1 run." in v.title.value and "1 runs" not in v.title.value
    make_job(store, "second-run", "JOB_STATE_SUCCEEDED", steps=10)
    v2 = CompareView(["only-run", "second-run"], live=False, store=store)
    views.append(v2)
    assert "2 runs." in v2.title.value


def test_compare_legend_uses_the_theme_grey(store, monkeypatch, views):
    """The figure's legend (not an axes legend, which style_figure greys) reads on a dark page too."""
    figures = []
    real = compare_module._to_png

    def capture(fig):
        figures.append(fig)
        return real(fig)

    monkeypatch.setattr(compare_module, "_to_png", capture)
    make_job(store, "one", "JOB_STATE_SUCCEEDED", steps=10)
    make_job(store, "two", "JOB_STATE_SUCCEEDED", steps=10)
    views.append(CompareView(["one", "two"], live=False, store=store))
    legend = figures[-1].legends[0]
    from matplotlib.colors import to_hex

    assert {to_hex(t.get_color()) for t in legend.get_texts()} == {theme.PLOT_TEXT}


def _report(pred: list[str], truth: list[str], name: str) -> EvaluationReport:
    rows = pd.DataFrame({"input_text": [f"case {i}" for i in range(len(truth))], "ground_truth": truth,
                         "prediction": pred, "correct": [t == p for t, p in zip(truth, pred)],
                         "status": [""] * len(truth)})
    return EvaluationReport("classification", "score", classification_metrics(truth, pred, LABELS), rows,
                            {"num_successful_rows": len(truth), "num_total_rows": len(truth)},
                            confusion(truth, pred, LABELS), LABELS, name)


def _row_cells(html: str, label: str) -> list[str]:
    row = html.split(f"<th>{label}</th>")[1].split("</tr>")[0]
    return [c.split("</td>")[0].strip() for c in row.split("<td>")[1:]]


def test_the_metrics_table_signs_only_the_differences():
    columns = pd.MultiIndex.from_tuples([("f1_score", "base"), ("f1_score", "tuned"), ("f1_score", "delta"),
                                         ("support", "")])
    metrics = pd.DataFrame([[0.25, 0.75, 0.5, 4], [0.75, 0.5, -0.25, 8], [float("nan"), 0.5, float("nan"), 2]],
                           index=["a", "b", "c"], columns=columns)
    table = metrics_table_html(metrics)
    assert _row_cells(table, "a") == ["0.250", "0.750", "+0.500", "4"]
    assert _row_cells(table, "b") == ["0.750", "0.500", "-0.250", "8"]
    assert _row_cells(table, "c") == ["—", "0.500", "—", "2"]


def test_the_evaluate_tab_shows_absolute_scores_without_a_sign(store):
    d = make_job(store, "eval-job", "JOB_STATE_SUCCEEDED", steps=10)
    truth = [LABELS[i % 3] for i in range(12)]
    write_report(d / "evaluation" / "base.json", _report([LABELS[0]] * 12, truth, "base"))
    write_report(d / "evaluation" / "tuned.json", _report(truth, truth, "tuned"))

    class Job:
        dir = d

    tab = EvaluateTab(Job())
    assert tab.update({"evaluation": {"headline": "macro F1 0.17 -> 1.00", "seconds": 4.0}, "progress": {}})
    html = tab.content.value
    # Cardiology: precision 4/12 -> 1, recall 1 -> 1, F1 0.5 -> 1 (base, tuned, delta each), support 4
    assert _row_cells(html, "Cardiology") == ["0.333", "1.000", "+0.667", "1.000", "1.000", "+0.000",
                                              "0.500", "1.000", "+0.500", "4"]
    assert "Fixed by tuning" in html and "data:image/png" in html  # the rest of the Comparison is still there


def test_the_use_checkpoint_button_is_wide_enough_for_its_label(store):
    d = make_job(store, "ckpt-job", "JOB_STATE_SUCCEEDED", steps=10)

    class Job:
        id = "ckpt-job"
        dir = d

    section = CheckpointsSection(Job())
    layout = section.use_button.layout
    assert layout.width == "auto" and layout.flex == "0 0 auto"  # not ipywidgets' fixed short width
    assert section.use_button.description == "Use this checkpoint"



def test_the_job_list_says_which_cancelled_jobs_have_weights(store):
    """GET jobs' has_checkpoint: the panel offers Test and Export on a cancelled job that saved weights."""
    from tests.support.fixtures import add_checkpoint

    bare = make_job(store, "cancelled-bare", "JOB_STATE_CANCELLED", steps=2)
    kept = make_job(store, "cancelled-kept", "JOB_STATE_CANCELLED", steps=6)
    add_checkpoint(kept, 5)
    assert bare.is_dir()
    summaries = {s["id"]: s for s in (store.summary(store.read(j)) for j in ("cancelled-bare", "cancelled-kept"))}
    assert summaries["cancelled-bare"]["has_checkpoint"] is False
    assert summaries["cancelled-kept"]["has_checkpoint"] is True
    make_job(store, "done", "JOB_STATE_SUCCEEDED", steps=6)  # its final adapter
    assert store.summary(store.read("done"))["has_checkpoint"] is True
