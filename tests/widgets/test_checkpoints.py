"""The Details tab's checkpoint table and chooser (widgets/checkpoints.py), without a browser."""

from __future__ import annotations

import json

from jupyter_tune.api.job import TuningJob
from jupyter_tune.jobs.checkpoints import mark_complete
from jupyter_tune.widgets import JobView
from jupyter_tune.widgets.checkpoints import FINAL
from tests.support.fixtures import add_checkpoint, make_job


def _whole_checkpoint(job_dir, step: int):
    import torch
    from safetensors.torch import save_file

    ckpt = add_checkpoint(job_dir, step)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": []}))
    save_file({"lora_A.weight": torch.zeros(2, 2)}, str(ckpt / "adapter_model.safetensors"))
    mark_complete(ckpt, step)
    return ckpt


def test_table_marks_best_and_chosen_and_the_choice_reaches_the_test_tab(store, views):
    d = make_job(store, "ck-1", "JOB_STATE_SUCCEEDED", steps=10,
                 best={"step": 5, "metric": "eval_total_loss", "value": 1.43})
    _whole_checkpoint(d, 5)
    ten = _whole_checkpoint(d, 10)
    v = JobView(TuningJob("ck-1", store))
    views.append(v)
    c = v.checkpoints
    assert c in v.details.children  # in the Details tab
    html = c.table.get_state()["value"]
    assert html.count("jt-checkpoint-row") == 2 and "eval loss" in html and "train loss" in html
    assert "macro F1" not in html  # no column for a metric never logged
    row5 = html[html.index('data-step="5"'):html.index('data-step="10"')]
    assert "★ best" in row5 and f"{3.2 / 5 ** 0.5:.4g}" in row5  # eval_total_loss logged at step 5
    assert [v for _, v in c.choice.options] == [FINAL, 5, 10] and c.choice.value == FINAL
    assert not c.use_button.disabled

    c.use(10)
    assert json.loads((d / "job.json").read_text())["chosen_checkpoint"]["step"] == 10
    assert "✔ chosen" in c.table.value and c.choice.value == 10 and "now checkpoint 10" in c.message.value
    assert v.test.source == str(ten) and "chosen with use_checkpoint" in v.test.status.value

    # a torn chosen checkpoint: the Test tab says so and stays closed, no silent fallback
    (ten / "adapter_model.safetensors").unlink()
    v.test.refresh()
    assert v.test.source is None and "cannot be read: adapter_model.safetensors is missing" in v.test.status.value
    assert v.test.generate_button.disabled
    c.use(10)
    assert "cannot be used" in c.message.value

    c.use(FINAL)
    assert json.loads((d / "job.json").read_text())["chosen_checkpoint"] is None
    assert v.test.source == str(d / "adapter") and "own final model" in c.message.value


def test_a_running_job_lists_checkpoints_but_cannot_choose(store, views):
    d = make_job(store, "ck-2", "JOB_STATE_RUNNING", steps=5)
    _whole_checkpoint(d, 5)
    v = JobView(TuningJob("ck-2", store), live=False)
    views.append(v)
    c = v.checkpoints
    assert 'data-step="5"' in c.table.value
    assert c.use_button.disabled and c.choice.disabled and "Once the job has ended" in c.message.value
    c.use(5)  # called anyway: the refusal is shown, nothing is written
    assert "once the job has ended" in c.message.value and not (v.job.record.get("chosen_checkpoint"))
