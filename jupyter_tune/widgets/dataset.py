"""The Dataset tab: the dataset statistics as Vertex shows them (counts, token-length histograms,
billable tokens, truncated and dropped examples) and sample examples as the model sees them, with the
trained-on part highlighted."""

from __future__ import annotations

import base64
from typing import Any

import ipywidgets as w

from .. import theme
from .charts import EVAL_COLOR, TRAIN_COLOR, histogram_png
from .format import count, esc, table_html

TRAINED_STYLE = f"background:{theme.TRAINED_SURFACE};border-bottom:2px solid {theme.SUCCESS}"
PROMPT_STYLE = theme.MUTED_STYLE
_MAX_LISTED = 20


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return ""
    return (f'<img alt="{esc(alt)}" style="max-width:100%" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}"/>')


def _dist_row(d: dict[str, Any] | None) -> str:
    if not d:
        return "—"
    return (f"min {count(d.get('min'))} · mean {d.get('mean', 0):.1f} · median {d.get('median', 0):.0f} · "
            f"p95 {d.get('p95', 0):.0f} · max {count(d.get('max'))}")


def _where(item: dict[str, Any], unit: str) -> str:
    """"example 2, line 5": the example's position in the job and its line (or index label, item) in the
    user's source; 0 is a real DataFrame index label."""
    return f"example {item.get('index')}" + (f", {unit} {item['line']}" if item.get("line") is not None else "")


def example_html(example: dict[str, Any], unit: str = "line") -> str:
    """One example as the model sees it: prompt text grey, the trained-on text highlighted."""
    spans = "".join(
        f'<span class="{"jt-trained" if s.get("trained") else "jt-prompt"}" '
        f'style="{TRAINED_STYLE if s.get("trained") else PROMPT_STYLE}">{esc(s.get("text"))}</span>'
        for s in example.get("segments", []))
    where = _where(example, unit)
    return (f'<div style="margin:6px 0"><div style="font-size:12px;color:{theme.MUTED}">{esc(where)}</div>'
            f'<pre style="white-space:pre-wrap;{theme.BOX_STYLE};padding:6px 8px;margin:2px 0;'
            f'font-size:12px;max-height:260px;overflow:auto">{spans}</pre></div>')


def split_html(title: str, s: dict[str, Any], epochs: Any, max_seq_length: Any, color: str) -> str:
    rows = [
        ("Examples", count(s.get("tuning_dataset_example_count"))),
        ("Billable tokens" + (f" ({epochs} epochs)" if epochs else ""), count(s.get("total_billable_token_count"))),
        ("Tokens per epoch", count(s.get("total_token_count"))),
        ("Steps", count(s.get("tuning_step_count"))),
        ("Input tokens per example", _dist_row(s.get("user_input_token_distribution"))),
        ("Output tokens per example", _dist_row(s.get("user_output_token_distribution"))),
        ("User messages per example", _dist_row(s.get("user_message_per_example_distribution"))),
        (f"Truncated to {max_seq_length} tokens" if max_seq_length else "Truncated",
         count(s.get("truncated_example_count") or 0)),
        ("Dropped", count(s.get("dropped_example_count") or 0)),
    ]
    preference = bool(s.get("chosen_token_distribution"))  # preference rows (method="dpo")
    if preference:
        rows[4:6] = [(f"{side.capitalize()} tokens per example", _dist_row(s.get(f"{side}_token_distribution")))
                     for side in ("prompt", "chosen", "rejected")]
    unit = s.get("unit") or "line"
    if s.get("source"):
        rows.insert(0, ("Source", s["source"]))
    parts = [f'<h4 style="margin:10px 0 4px">{esc(title)}</h4>', table_html(rows)]
    hists = [_img(histogram_png(s.get("user_input_token_distribution"), "Input tokens per example", color),
                  "input token histogram"),
             _img(histogram_png(s.get("user_output_token_distribution"), "Output tokens per example", color),
                  "output token histogram")]
    if preference:
        hists = [_img(histogram_png(s.get(f"{side}_token_distribution"), f"{side.capitalize()} tokens per example",
                                    color), f"{side} token histogram") for side in ("prompt", "chosen", "rejected")]
    parts.append(f'<div style="display:flex;gap:12px;flex-wrap:wrap;margin:6px 0">{"".join(hists)}</div>')

    truncated = s.get("truncated_example_indices") or []
    if truncated:
        more = f" and {len(truncated) - _MAX_LISTED} more" if len(truncated) > _MAX_LISTED else ""
        parts.append(f"<div><b>Truncated examples</b> (index): "
                     f"{esc(', '.join(str(i) for i in truncated[:_MAX_LISTED]))}{more}</div>")
    dropped = s.get("dropped_examples") or []
    if dropped:
        items = "".join(
            f"<li>{esc(_where(d, unit))}: {esc(d.get('reason'))}</li>" for d in dropped[:_MAX_LISTED])
        more = f"<li>… and {len(dropped) - _MAX_LISTED} more</li>" if len(dropped) > _MAX_LISTED else ""
        parts.append(f'<div><b>Dropped examples</b><ul style="margin:2px 0">{items}{more}</ul></div>')
    warnings = s.get("warnings") or []
    if warnings:
        parts.append('<div><b>Warnings</b><ul style="margin:2px 0">'
                     + "".join(f"<li>{esc(x)}</li>" for x in warnings) + "</ul></div>")
    samples = s.get("user_dataset_examples") or []
    if samples:
        parts.append(f'<div style="margin-top:8px"><b>Sample examples</b> as the model sees them '
                     f'(<span style="{TRAINED_STYLE}">highlighted</span>: the part the model is trained '
                     f"to produce)</div>" + "".join(example_html(e, unit) for e in samples))
    return "".join(parts)


def health_html(health: dict[str, Any] | None) -> str:
    """The dataset health checks (data/health.py): a red line per leak or conflict, grey lines for
    duplicates and label notes, and the label counts per split."""
    if not health:
        return ""
    findings = health.get("findings") or []
    counts = health.get("counts") or {}
    rows = health.get("rows") or {}
    n_warn = sum(counts.get(k, 0) for k in ("overlap", "conflict"))
    head = (f'<span class="jt-health-bad" style="{theme.ERROR_STYLE};font-weight:600">{count(n_warn)} '
            f"leak{'s' * (n_warn != 1)} or conflict{'s' * (n_warn != 1)}</span>" if n_warn else
            f'<span style="{theme.SUCCESS_STYLE}">No leakage or conflicting labels</span>')
    checked = " · ".join(f"{count(n)} {esc(s)} rows" for s, n in rows.items())
    parts = [f'<h4 style="margin:10px 0 4px">Dataset health</h4><div>{head} '
             f'<span style="{theme.MUTED_STYLE}">({checked} checked in {health.get("seconds", 0):.1f} s)</span></div>']
    items = []
    for f in findings[:_MAX_LISTED]:
        style = theme.ERROR_STYLE if f.get("severity") == "warning" else theme.MUTED_STYLE
        cls = "jt-health-warning" if f.get("severity") == "warning" else "jt-health-info"
        items.append(f'<li class="{cls}" style="{style}">{esc(f.get("message"))}</li>')
    total = sum(counts.values())
    if total > len(items):
        items.append(f"<li>… and {count(total - len(items))} more (job.dataset_stats['health'])</li>")
    if items:
        parts.append(f'<ul style="margin:2px 0">{"".join(items)}</ul>')
    labels = health.get("labels")
    if labels:
        names = list(labels.get("train", {}))
        names += [x for x in labels.get("validation", {}) if x not in names]
        table = [(name, f"{labels.get('train', {}).get(name, 0)}"
                  + (f" / {labels['validation'].get(name, 0)}" if "validation" in labels else ""))
                 for name in names[:_MAX_LISTED]]
        more = f" (first {_MAX_LISTED} of {len(names)})" if len(names) > _MAX_LISTED else ""
        parts.append(f"<div><b>Labels</b>: {count(len(names))}, most / least frequent in training "
                     f"{labels.get('imbalance_ratio')}x; examples per label (training"
                     + (" / validation" if "validation" in labels else "") + f"){more}</div>" + table_html(table))
    return "".join(parts)


def dataset_html(stats: dict[str, Any] | None) -> str:
    if not stats:
        return (f'<div style="{theme.MUTED_STYLE}">The dataset statistics appear once the job has read its '
                "dataset.</div>")
    epochs, msl = stats.get("epochs"), stats.get("max_seq_length")
    parts = [health_html(stats.get("health"))]
    if stats.get("train"):
        parts.append(split_html("Training dataset", stats["train"], epochs, msl, TRAIN_COLOR))
    if stats.get("validation"):
        parts.append(split_html("Validation dataset", stats["validation"], None, msl, EVAL_COLOR))
    else:
        parts.append(f'<div style="{theme.MUTED_STYLE};margin-top:8px">No validation dataset.</div>')
    return f'<div class="jt-dataset" style="line-height:1.4">{"".join(parts)}</div>'


class DatasetTab(w.VBox):
    def __init__(self):
        self.content = w.HTML(value=dataset_html(None))
        self._shown: dict[str, Any] | None = None
        super().__init__([self.content])

    def update(self, stats: dict[str, Any] | None) -> None:
        if stats == self._shown:
            return
        self._shown = stats
        self.content.value = dataset_html(stats)

