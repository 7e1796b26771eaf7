"""The Test tab: prompt the tuned model (and optionally the base model beside it) once the job has an
adapter: when it succeeded, from the checkpoint chosen with job.use_checkpoint, or from the latest
checkpoint of a cancelled or failed job.

It tests the way the job was trained: the job's prompt template is filled from one box per placeholder
(raw text on request), the exact prompt sent is shown, and a classification job's labels are ranked as
jt.evaluate ranks them (widgets/test_prompt.py). A classification-head job (task="classification") answers
with its most likely label and ranks its labels by the head's softmax."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w

from .. import theme
from ..jobs.states import JobState
from ..params import DEFAULT_MAX_OUTPUT_TOKENS
from . import test_prompt
from .format import esc

_ANSWER_STYLE = f"white-space:pre-wrap;{theme.BOX_STYLE};padding:8px;min-height:40px;font-size:13px;margin:2px 0"


def model_source(job) -> tuple[str, str] | None:
    """The adapter the tuned model loads from and a line saying what it is, or None while there is none.
    The same rule as jt.load_model (models/loading.job_adapter), so the tab opens exactly when loading works."""
    from ..models.loading import JobNotReadyError, job_adapter

    try:
        adapter, _ = job_adapter(job)  # a torn chosen checkpoint raises CheckpointError: shown by the tab
    except JobNotReadyError:
        return None
    adapter = Path(adapter)
    if adapter.parent.name == "checkpoints" and job.record.get("chosen_checkpoint"):
        return str(adapter), f"the checkpoint chosen with use_checkpoint, {adapter.name}"
    if adapter.parent.name == "checkpoints":
        return str(adapter), f"the latest checkpoint, {adapter.name}"
    if job.state == JobState.SUCCEEDED:
        return str(adapter), "the tuned model" + (" (final adapter)" if adapter == Path(job.adapter_path) else "")
    return str(adapter), f"the model saved when the job stopped ({adapter})"


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide transformers' "Loading weights" bar: drawn from the button's thread, it would land in whatever
    cell happens to be running."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _answer_html(title: str, text: str) -> str:
    return f'<div style="font-weight:600;font-size:13px">{esc(title)}</div><div style="{_ANSWER_STYLE}">{esc(text)}</div>'


class TestTab(w.VBox):
    __test__ = False  # not a pytest test class

    def __init__(self, job):
        self.job = job
        self.source: Any = None
        self.base_model: str | None = None
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.status = w.HTML()
        self._labels: list[str] | None | bool = False  # the job's labels once read (None: not classification)
        # The job's prompt template, filled from one box per placeholder; `prompt` holds raw text.
        self.template, names = test_prompt.job_template(job.params)
        self.prompt = w.Textarea(placeholder="Type a prompt for the tuned model…",
                                 layout=w.Layout(width="100%", height="90px"))
        one = names == ["input_text"]
        self.fields = {name: w.Textarea(placeholder=(f"Text for {{{name}}} in the job's prompt template…" if one
                                                     else f"{{{name}}}"),
                                        description="" if one else name, style={"description_width": "110px"},
                                        layout=w.Layout(width="100%", height="90px" if one else "60px"))
                       for name in names}
        self.raw = w.Checkbox(value=False, indent=False,
                              description="Send raw text instead (no prompt template)")
        self.raw.observe(lambda _c: self._show_inputs(), names="value")
        self.template_note = w.HTML(
            f'<div style="{theme.MUTED_STYLE};font-size:12px">The job\'s prompt template is filled as in training: '
            f'<code style="white-space:pre-wrap">{esc(self.template)}</code></div>' if self.template else "")
        self.field_box = w.VBox(list(self.fields.values()))
        self.sent = w.HTML()
        self.sent_box = w.Accordion(children=[self.sent], titles=("Prompt sent (chat template included)",),
                                    selected_index=None)
        self.ranking = w.HTML()
        style = {"description_width": "130px"}
        self.temperature = w.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.05, description="Temperature",
                                         style=style)
        self.top_p = w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.01, description="Top-p", style=style)
        self.top_k = w.IntSlider(value=0, min=0, max=100, description="Top-k (0: off)", style=style)
        self.max_output_tokens = w.IntSlider(value=DEFAULT_MAX_OUTPUT_TOKENS, min=1, max=1024, description="Max output tokens",
                                             style=style)
        self.compare = w.Checkbox(value=False, description="Show the base model's answer beside it",
                                  indent=False)
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="play")
        self.generate_button.on_click(lambda _b: threading.Thread(target=self.generate, daemon=True).start())
        self.tuned_answer = w.HTML(layout=w.Layout(flex="1 1 0", min_width="0"))
        self.base_answer = w.HTML(layout=w.Layout(flex="1 1 0", min_width="0", display="none"))
        self.answers = w.HBox([self.tuned_answer, self.base_answer], layout=w.Layout(grid_gap="12px"))
        self.controls = [self.prompt, *self.fields.values(), self.raw, self.temperature, self.top_p, self.top_k,
                         self.max_output_tokens, self.compare, self.generate_button]
        inputs = [self.template_note, self.field_box, self.raw] if self.template else []
        super().__init__([self.status, *inputs, self.prompt,
                          w.HBox([w.VBox([self.temperature, self.top_p]),
                                  w.VBox([self.top_k, self.max_output_tokens])]),
                          w.HBox([self.generate_button, self.compare],
                                 layout=w.Layout(align_items="center", grid_gap="16px")),
                          self.answers, self.ranking, self.sent_box])
        self._show_inputs()
        self.refresh()

    def _show_inputs(self) -> None:
        """The template's boxes, or the raw text box (a job without a template has only that one)."""
        templated = self.template is not None and not self.raw.value
        self.field_box.layout.display = None if templated else "none"
        self.prompt.layout.display = "none" if templated else None

    @property
    def enabled(self) -> bool:
        return self.source is not None

    def refresh(self, record: dict[str, Any] | None = None) -> None:
        """Enable the tab once there is an adapter to test."""
        record = record or self.job.record
        self.base_model = (record.get("params") or {}).get("base_model") or (
            record.get("tuning") or {}).get("base_model")
        from ..jobs.choice import CheckpointError

        problem = None
        try:
            found = model_source(self.job)
        except CheckpointError as e:  # a torn chosen checkpoint: said, never replaced by another model
            found, problem = None, str(e)
        self.source = found[0] if found else None
        if problem:
            self.status.value = f'<span style="{theme.ERROR_STYLE}">{esc(problem)}</span>'
        elif found is None:
            self.status.value = (f'<span style="{theme.MUTED_STYLE}">Testing opens when the job has succeeded (or '
                                 "from the latest checkpoint of a cancelled job).</span>")
        else:
            self.status.value = f'<span style="{theme.SUCCESS_STYLE}">Testing {esc(found[1])}.</span>'
        for c in self.controls:
            c.disabled = self.source is None

    def _model(self, source: Any):
        from ..models import loading

        key = str(source)
        if key not in self._models:
            with _no_progress_bars():
                self._models[key] = loading.load_model(source)
        return self._models[key]

    def _answer(self, model, rows: list[dict], template: str) -> str:
        import inspect

        if getattr(model, "is_classifier", False):  # a label head answers with its most likely label
            ranked, _ = test_prompt.rank_labels(model, rows, template, list(model.head_labels))
            return ranked[0][0]

        from .. import generation

        generate = generation.generate_text
        extra = {}
        if "progress" in inspect.signature(generate).parameters:
            extra["progress"] = False  # a progress bar from this thread would land in whatever cell runs
        df = generate(
            model, rows, prompt_template=template, temperature=float(self.temperature.value),
            top_p=float(self.top_p.value) if self.top_p.value < 1.0 else None,
            top_k=int(self.top_k.value) or None, max_output_tokens=int(self.max_output_tokens.value), **extra)
        return str(df["ml_generate_text_llm_result"].iloc[0])

    def generate(self) -> None:
        """Answer the prompt with the tuned model (and the base model when asked). Blocks; the button runs
        it in a thread so the kernel stays free."""
        if not self.enabled:
            return
        values = {name: box.value for name, box in self.fields.items()}
        raw = self.raw.value or self.template is None
        rows, template = test_prompt.request(self.template, values, self.prompt.value, raw)
        if not any(str(v).strip() for v in ([self.prompt.value] if raw else values.values())):
            self.status.value = (f'<span style="{theme.ERROR_STYLE}">'
                                 f'{"Type a prompt" if raw else "Fill in the template"} first.</span>')
            return
        with self._lock:
            self.generate_button.disabled = True
            try:
                self.status.value = ("Loading the tuned model…" if str(self.source) not in self._models
                                     else "Generating…")
                tuned = self._model(self.source)
                self.status.value = "Generating…"
                self.tuned_answer.value = _answer_html("Tuned model", self._answer(tuned, rows, template))
                self._show_sent(tuned, rows, template)
                self._rank(tuned, rows, template)
                if self.compare.value and self.base_model:
                    self.status.value = "Generating with the base model…"
                    base = self._model(self.base_model)
                    self.base_answer.value = _answer_html(f"Base model ({self.base_model})",
                                                          self._answer(base, rows, template))
                    self.base_answer.layout.display = None
                else:
                    self.base_answer.layout.display = "none"
                self.status.value = f'<span style="{theme.SUCCESS_STYLE}">Done.</span>'
            except Exception as e:  # shown in the tab: a failing generation must not kill the view
                self.status.value = (f'<span style="{theme.ERROR_STYLE}">Generation failed: '
                                     f"{esc(type(e).__name__)}: {esc(e)}</span>")
            finally:
                self.generate_button.disabled = False

    def _show_sent(self, model, rows: list[dict], template: str) -> None:
        """The exact prompt the tuned model was given, chat template and special tokens included."""
        try:
            text = test_prompt.rendered_prompt(model, rows, template)
        except Exception as e:  # noqa: BLE001 - shown in place of the prompt; the answer stands
            self.sent.value = f'<span style="{theme.ERROR_STYLE}">Could not render the prompt: {esc(e)}</span>'
            return
        self.sent.value = f'<pre class="jt-prompt-sent" style="white-space:pre-wrap;{theme.BOX_STYLE};padding:6px;' \
                          f'font-size:12px;margin:0">{esc(text)}</pre>'

    def _rank(self, model, rows: list[dict], template: str) -> None:
        """A classification job's labels ranked for this prompt (jt.evaluate's score mode)."""
        if self._labels is False:
            self._labels = test_prompt.job_labels(self.job)
        if not self._labels:
            self.ranking.value = ""
            return
        self.status.value = "Ranking the labels…"
        try:
            ranked, how = test_prompt.rank_labels(model, rows, template, self._labels)
        except Exception as e:  # noqa: BLE001 - shown; the generated answer stands
            self.ranking.value = f'<span style="{theme.ERROR_STYLE}">Could not rank the labels: {esc(e)}</span>'
            return
        self.ranking.value = test_prompt.ranking_html(ranked, how)
