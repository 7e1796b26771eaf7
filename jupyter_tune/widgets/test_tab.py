"""The Test tab: prompt the tuned model (and optionally the base model beside it) once the job has an
adapter: when it succeeded, or from the latest checkpoint of a cancelled or failed job."""

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
from .format import esc

_ANSWER_STYLE = f"white-space:pre-wrap;{theme.BOX_STYLE};padding:8px;min-height:40px;font-size:13px;margin:2px 0"


def model_source(job) -> tuple[str, str] | None:
    """The adapter the tuned model loads from and a line saying what it is, or None while there is none.
    The same rule as jt.load_model (models/loading.job_adapter), so the tab opens exactly when loading works."""
    from ..models.loading import JobNotReadyError, job_adapter

    try:
        adapter, _ = job_adapter(job)
    except JobNotReadyError:
        return None
    adapter = Path(adapter)
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
        self.prompt = w.Textarea(placeholder="Type a prompt for the tuned model…",
                                 layout=w.Layout(width="100%", height="90px"))
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
        self.controls = [self.prompt, self.temperature, self.top_p, self.top_k, self.max_output_tokens,
                         self.compare, self.generate_button]
        super().__init__([self.status, self.prompt,
                          w.HBox([w.VBox([self.temperature, self.top_p]),
                                  w.VBox([self.top_k, self.max_output_tokens])]),
                          w.HBox([self.generate_button, self.compare],
                                 layout=w.Layout(align_items="center", grid_gap="16px")),
                          self.answers])
        self.refresh()

    @property
    def enabled(self) -> bool:
        return self.source is not None

    def refresh(self, record: dict[str, Any] | None = None) -> None:
        """Enable the tab once there is an adapter to test."""
        record = record or self.job.record
        self.base_model = (record.get("params") or {}).get("base_model") or (
            record.get("tuning") or {}).get("base_model")
        found = model_source(self.job)
        if found is None:
            self.source = None
            self.status.value = (f'<span style="{theme.MUTED_STYLE}">Testing opens when the job has succeeded (or '
                                 "from the latest checkpoint of a cancelled job).</span>")
        else:
            self.source, what = found
            self.status.value = f'<span style="{theme.SUCCESS_STYLE}">Testing {esc(what)}.</span>'
        for c in self.controls:
            c.disabled = self.source is None

    def _model(self, source: Any):
        from ..models import loading

        key = str(source)
        if key not in self._models:
            with _no_progress_bars():
                self._models[key] = loading.load_model(source)
        return self._models[key]

    def _answer(self, model, prompt: str) -> str:
        import inspect

        from .. import generation

        generate = generation.generate_text
        extra = {}
        if "progress" in inspect.signature(generate).parameters:
            extra["progress"] = False  # a progress bar from this thread would land in whatever cell runs
        df = generate(
            model, [{"prompt": prompt}], temperature=float(self.temperature.value),
            top_p=float(self.top_p.value) if self.top_p.value < 1.0 else None,
            top_k=int(self.top_k.value) or None, max_output_tokens=int(self.max_output_tokens.value), **extra)
        return str(df["ml_generate_text_llm_result"].iloc[0])

    def generate(self) -> None:
        """Answer the prompt with the tuned model (and the base model when asked). Blocks; the button runs
        it in a thread so the kernel stays free."""
        if not self.enabled:
            return
        prompt = self.prompt.value
        if not prompt.strip():
            self.status.value = f'<span style="{theme.ERROR_STYLE}">Type a prompt first.</span>'
            return
        with self._lock:
            self.generate_button.disabled = True
            try:
                self.status.value = ("Loading the tuned model…" if str(self.source) not in self._models
                                     else "Generating…")
                tuned = self._model(self.source)
                self.status.value = "Generating…"
                self.tuned_answer.value = _answer_html("Tuned model", self._answer(tuned, prompt))
                if self.compare.value and self.base_model:
                    self.status.value = "Generating with the base model…"
                    base = self._model(self.base_model)
                    self.base_answer.value = _answer_html(f"Base model ({self.base_model})",
                                                          self._answer(base, prompt))
                    self.base_answer.layout.display = None
                else:
                    self.base_answer.layout.display = "none"
                self.status.value = f'<span style="{theme.SUCCESS_STYLE}">Done.</span>'
            except Exception as e:  # shown in the tab: a failing generation must not kill the view
                self.status.value = (f'<span style="{theme.ERROR_STYLE}">Generation failed: '
                                     f"{esc(type(e).__name__)}: {esc(e)}</span>")
            finally:
                self.generate_button.disabled = False
