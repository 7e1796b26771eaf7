"""Charts rendered to PNG bytes with matplotlib's Agg canvas (no pyplot: safe from a background thread).
Transparent, with colours that read on JupyterLab's light and dark themes (theme.py)."""

from __future__ import annotations

import io
from typing import Any

from .. import theme

TRAIN_COLOR = theme.PLOT_BLUE
EVAL_COLOR = theme.PLOT_ORANGE

# (title, train key, eval key or None)
METRIC_PANELS = [
    ("Loss", "train_total_loss", "eval_total_loss"),
    ("Next-token accuracy", "train_fraction_of_correct_next_step_preds",
     "eval_fraction_of_correct_next_step_preds"),
    ("Number of predictions", "train_num_predictions", "eval_num_predictions"),
    ("Tokens per second", "tokens_per_second", None),
]


# Preference tuning (method="dpo"): TRL's rewards and log-probabilities (training/callbacks.py names them).
DPO_PANELS = [
    ("Loss", "train_total_loss", "eval_total_loss"),
    ("Reward margin (chosen - rejected)", "train_rewards_margin", "eval_rewards_margin"),
    ("Reward accuracy (chosen ranked first)", "train_rewards_accuracy", "eval_rewards_accuracy"),
    ("Log-prob of the chosen answer", "train_logps_chosen", "eval_logps_chosen"),
    ("Log-prob of the rejected answer", "train_logps_rejected", "eval_logps_rejected"),
    ("Tokens per second", "tokens_per_second", None),
]


# Reinforcement from graders (method="grpo"): TRL's rewards and answer statistics (callbacks.py names them).
GRPO_PANELS = [
    ("Loss", "train_total_loss", "eval_total_loss"),
    ("Mean reward (graders summed)", "train_reward", "eval_reward"),
    ("Reward spread in a group (std)", "train_reward_std", "eval_reward_std"),
    ("Groups without a reward spread", "train_constant_groups", "eval_constant_groups"),
    ("Answer length (tokens)", "train_completion_length", "eval_completion_length"),
    ("Tokens per second", "tokens_per_second", None),
]


def is_grpo(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("train_reward") is not None or r.get("eval_reward") is not None for r in rows)


def is_dpo(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("train_rewards_margin") is not None or r.get("eval_rewards_margin") is not None for r in rows)


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if v is not None and r.get("step") is not None:
            xs.append(r["step"])
            ys.append(v)
    return xs, ys


def _to_png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    theme.style_figure(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True)
    return buf.getvalue()


def has_eval(rows: list[dict[str, Any]]) -> bool:
    return any(r.get("eval_total_loss") is not None for r in rows)


def has_task_metric(rows: list[dict[str, Any]]) -> bool:
    return any(r.get(key) is not None for r in rows for key, _, _ in TASK_SERIES)


# The task metric on the validation rows (training/selection.py): (key, label, colour): label scoring for
# classification, ROUGE-L F1 of greedy answers for generation.
TASK_SERIES = [("eval_macro_f1", "macro F1", EVAL_COLOR), ("eval_accuracy", "accuracy", theme.PLOT_GREEN),
               ("eval_rouge_l", "ROUGE-L F1", EVAL_COLOR)]


def _mark_steps(ax, kept_step: int | None, stopped_at: int | None) -> None:
    """A line at the kept checkpoint's step and one at the early stop (jobs/kept.py), labelled once."""
    if kept_step is not None:
        ax.axvline(kept_step, color=theme.PLOT_GREEN, linestyle="--", linewidth=1.2, label=f"model: step {kept_step}")
    if stopped_at is not None and stopped_at != kept_step:
        ax.axvline(stopped_at, color=theme.PLOT_TEXT, linestyle=":", linewidth=1.2,
                   label=f"stopped early: step {stopped_at}")


def metrics_png(rows: list[dict[str, Any]], total_steps: int | None = None, *, kept_step: int | None = None,
                stopped_at: int | None = None) -> bytes:
    """The Supervise charts: loss, accuracy, predictions per step and tokens/s, train and validation; the
    kept checkpoint's step and an early stop marked on each panel."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with_task = has_task_metric(rows)
    grpo = is_grpo(rows)
    dpo = is_dpo(rows) or grpo  # both fill three rows of panels
    panels = GRPO_PANELS if grpo else DPO_PANELS if dpo else METRIC_PANELS
    fig = Figure(figsize=(10, 8.4 if with_task or dpo else 5.6), dpi=80, layout="constrained")
    axes = fig.subplots(3 if with_task or dpo else 2, 2).ravel()
    with_eval = has_eval(rows)
    if with_task:
        _task_panel(axes[4], rows, total_steps)
        _mark_steps(axes[4], kept_step, stopped_at)
        axes[4].legend(fontsize=8, loc="lower right")
        axes[5].set_visible(False)
    for ax, (title, train_key, eval_key) in zip(axes, panels):
        ax.set_title(title, fontsize=11, loc="left")
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("step", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        x, y = _series(rows, train_key)
        if x:
            ax.plot(x, y, color=TRAIN_COLOR, linewidth=1.6, marker="o" if len(x) < 30 else None,
                    markersize=3, label="train")
        if with_eval and eval_key:
            x, y = _series(rows, eval_key)
            if x:
                ax.plot(x, y, color=EVAL_COLOR, linewidth=1.6, marker="o", markersize=3, label="validation")
        if rows:
            _mark_steps(ax, kept_step, stopped_at)
        if total_steps:
            ax.set_xlim(0, max(total_steps, 1))
        if not rows:
            ax.text(0.5, 0.5, "waiting for the first step…", ha="center", va="center",
                    transform=ax.transAxes, color=theme.PLOT_TEXT)
        elif ax.lines and ((with_eval and eval_key) or kept_step is not None or stopped_at is not None):
            ax.legend(fontsize=8, loc="best")
    return _to_png(fig)


def _task_panel(ax, rows: list[dict[str, Any]], total_steps: int | None) -> None:
    from matplotlib.ticker import MaxNLocator

    generation = any(r.get("eval_rouge_l") is not None for r in rows)
    ax.set_title("Validation task metric (" + ("ROUGE-L of greedy answers" if generation else "label scoring") + ")",
                 fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("step", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0, 1.02)
    for key, label, color in TASK_SERIES:
        x, y = _series(rows, key)
        if x:
            ax.plot(x, y, color=color, linewidth=1.6, marker="o", markersize=3, label=label)
    if total_steps:
        ax.set_xlim(0, max(total_steps, 1))
    ax.legend(fontsize=8, loc="lower right")


def histogram_png(distribution: dict[str, Any] | None, title: str, color: str = TRAIN_COLOR) -> bytes | None:
    """A token-length histogram from a Vertex distribution's buckets, with its mean and median marked."""
    if not distribution or not distribution.get("buckets"):
        return None
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.6, 2.6), dpi=80, layout="constrained")
    ax = fig.subplots()
    buckets = distribution["buckets"]
    lefts = [b["left"] for b in buckets]
    widths = [max(b["right"] - b["left"], 1e-9) for b in buckets]
    ax.bar(lefts, [b["count"] for b in buckets], width=widths, align="edge", color=color, alpha=0.85,
           edgecolor="none")
    for key, style in (("mean", "--"), ("median", ":")):
        if distribution.get(key) is not None:
            ax.axvline(distribution[key], color=theme.PLOT_TEXT, linestyle=style, linewidth=1.2,
                       label=f"{key} {distribution[key]:.0f}")
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel("tokens", fontsize=9)
    ax.set_ylabel("examples", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8)
    return _to_png(fig)
