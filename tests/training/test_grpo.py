"""method="grpo": TRL's GRPOTrainer with graders as rewards, on the tiny model (mechanics only)."""

import json
import re
import time

import psutil
import pytest

import jupyter_tune as jt
from jupyter_tune.params import ParameterError, TuningParams
from tests.support.tiny_model import TWO_LABEL_ROWS

BROKEN = "def grade(sample, item):\n    raise RuntimeError('boom')\n"
# Grades the rows' own answers (jt.tune's probe of the first rows passes) and raises on the model's answers.
BREAKS_ON_ANSWERS = ("def grade(sample, item):\n    if sample == item.get('reference'):\n        return 0.0\n"
                     "    raise RuntimeError('boom')\n")
# Grades the rows' own answers and never returns on the model's.
HANGS_ON_ANSWERS = ("def grade(sample, item):\n    if sample == item.get('reference'):\n        return 1.0\n"
                    "    while True:\n        pass\n")


def _rows(job) -> list[dict]:
    return [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]


def test_grpo_parameters_and_their_rules():
    p = TuningParams(method="grpo")
    assert (p.num_generations, p.max_completion_length, p.kl_beta, p.graders) == (4, 32, 0.0, None)
    assert p.effective_learning_rate == 5e-5
    from jupyter_tune.params import schema

    fields = {f["name"]: f for f in schema()["parameters"]}
    assert "grpo" in fields["method"]["choices"] and "eval_reward" in fields["select_best"]["choices"]
    assert fields["num_generations"]["minimum"] == 2 and fields["graders"]["group"] == "advanced"
    for bad, match in [(dict(num_generations=1), "num_generations: 1 is below"),
                       (dict(num_generations=3), "must divide batch_size"),
                       (dict(task="classification"), "task: 'classification'"),
                       (dict(sharding="fsdp"), "sharding"),
                       (dict(graders=[{"kind": "score_model"}]), "judge callable"),
                       (dict(graders=[{"kind": "python"}]), "needs 'source'"),
                       (dict(graders=["label_match"]), r"graders: expected list\[dict\]")]:
        with pytest.raises(ParameterError, match=match):
            TuningParams(method="grpo", **bad)
    with pytest.raises(ParameterError, match="only for method='grpo'"):
        TuningParams(graders=[{"kind": "label_match"}])
    # grader objects are taken as their specs (OpenAI's "type" key)
    from jupyter_tune.graders import StringCheck

    p = TuningParams(method="grpo", graders=[StringCheck(operation="ilike")])
    assert p.graders[0]["type"] == "string_check" and p.graders[0]["operation"] == "ilike"


def test_grader_specs_build_graders():
    from jupyter_tune.graders import graders_from_specs

    gs = graders_from_specs(None)
    assert [g.kind for g in gs] == ["label_match"]
    gs = graders_from_specs([{"kind": "string_check", "operation": "ilike"}, {"type": "string_check"},
                             {"kind": "python", "source": "def f(sample, item):\n    return len(sample) < 5"},
                             {"kind": "multi", "graders": [{"kind": "label_match"},
                                                           {"kind": "text_similarity"}], "weights": [3, 1]}])
    assert [g.name for g in gs] == ["string_check", "string_check_2", "python", "multi"]
    assert gs[2].grade("abc", {}) == 1.0 and gs[3].grade("Urology", {"reference": "Urology"}) == 1.0
    assert gs[2].source.startswith("def f") and gs[2].worker_pid is not None  # run in its worker process
    from jupyter_tune.graders import close_graders

    close_graders(gs)
    with pytest.raises(ParameterError) as e:
        graders_from_specs([{"kind": "string_check", "operation": "nope"}, {"kind": "label_match", "colour": 1},
                            {"kind": "python", "source": "def grade(:"}])
    assert len(e.value.problems) == 3 and "colour" in e.value.problems[1] and "compile" in e.value.problems[2]


def test_a_grader_reward_scores_errors_zero_and_counts_them():
    from jupyter_tune.graders import LabelMatch, PythonGrader
    from jupyter_tune.training.grpo import GraderReward

    logged = {}
    reward = GraderReward(LabelMatch(), group_size=2)
    items = [json.dumps({"reference": "Urology"})] * 4
    completions = [[{"role": "assistant", "content": c}] for c in ("Urology", "x", "y", "z")]
    scores = reward([None] * 4, completions, item=items, log_metric=lambda k, v: logged.setdefault(k, v))
    assert scores == [1.0, 0.0, 0.0, 0.0] and reward.__name__ == "label_match"
    assert logged == {"grader_errors/label_match": 0.0, "constant_groups/label_match": 0.5}

    def bad(sample, item):
        return float("nan") if sample == "x" else 2.0
    broken = GraderReward(PythonGrader(bad, name="bad grader"), group_size=2)
    assert broken([None] * 2, ["x", "y"], item=items[:2]) == [0.0, 0.0]
    assert broken.summary()["errors"] == 2 and broken.__name__ == "bad_grader"


def test_a_mostly_failing_grader_is_a_warning_on_the_job(tune_home):
    """More than half of a grader's answers errored: a warning in job.json (beside the data's), and in the log."""
    from jupyter_tune.graders import PythonGrader
    from jupyter_tune.jobs.store import JobStore
    from jupyter_tune.training.grpo import GraderReward, record_grader_warnings

    store = JobStore()
    store.create("job-1", {"state": "JOB_STATE_RUNNING", "warnings": ["a data warning"]})
    items = [json.dumps({"reference": "a"})] * 4
    half = GraderReward(PythonGrader(lambda s, i: 1.0 if s == "a" else 1 / 0, name="half"), group_size=2)
    half([None] * 4, ["a", "a", "b", "b"], item=items)  # 2 of 4: not more than half
    most = GraderReward(PythonGrader(lambda s, i: 1.0 if s == "a" else 1 / 0, name="most"), group_size=2)
    most([None] * 4, ["a", "b", "b", "b"], item=items)
    assert half.warning() is None and most.summary()["first_error"] == "most: ZeroDivisionError: division by zero"
    assert record_grader_warnings([half, most], store, "job-1") == [most.warning()]
    warnings = store.read("job-1")["warnings"]
    assert warnings[0] == "a data warning" and len(warnings) == 2
    assert warnings[1] == ("Grader most (python) errored on 3 of 4 answers (75%); they scored 0, so its rewards "
                           "carried little signal. First error: most: ZeroDivisionError: division by zero")


def test_grpo_metrics_get_clear_names():
    from jupyter_tune.training.callbacks import grpo_metrics

    logs = {"loss": 0.1, "reward": 0.5, "reward_std": 0.2, "frac_reward_zero_std": 0.5,
            "completions/mean_length": 3.0, "kl": None, "rewards/label_match/mean": 0.5,
            "rewards/label_match/std": 0.1, "grader_errors/broken": 1.0, "constant_groups/broken": 1.0}
    assert grpo_metrics(logs, "train") == {
        "train_reward": 0.5, "train_reward_std": 0.2, "train_constant_groups": 0.5, "train_completion_length": 3.0,
        "train_reward_label_match": 0.5, "train_grader_errors_broken": 1.0, "train_constant_groups_broken": 1.0}
    assert grpo_metrics({"eval_reward": 0.25, "eval_rewards/label_match/mean": 0.25}, "eval") == {
        "eval_reward": 0.25, "eval_reward_label_match": 0.25}
    assert grpo_metrics({"loss": 1.0, "rewards/margins": 0.3}, "train") == {}  # DPO's are not GRPO's


def test_bad_grpo_jobs_are_refused_before_a_job_exists(tune_home, tiny_model_dir):
    from jupyter_tune.jobs.store import JobStore

    for bad in (dict(num_generations=1), dict(task="classification"),
                dict(graders=[{"kind": "python", "source": "def grade(sample, item) return 1"}])):
        with pytest.raises(ParameterError):
            jt.tune(base_model=str(tiny_model_dir), train_dataset=TWO_LABEL_ROWS, method="grpo", **bad)
    # issue 33: each grader is checked whole, then tried on the first training rows, before a job exists
    for graders, rows, message in [
        ([{"kind": "string_check", "pass_threshold": "x"}], TWO_LABEL_ROWS, "pass_threshold='x'"),
        ([{"kind": "string_check", "pass_treshold": 0.5}], TWO_LABEL_ROWS, "did you mean 'pass_threshold'"),
        ([{"kind": "string_check", "reference": 5}], TWO_LABEL_ROWS, "reference=5"),
        ([{"kind": "python", "source": "def grade(sample):\n    return 1.0\n"}], TWO_LABEL_ROWS,
         "cannot be called as grade(sample, item)"),
        ([{"kind": "python", "source": BROKEN, "time_limit": None}], TWO_LABEL_ROWS, "time_limit=None"),
        ([{"kind": "label_match"}, {"kind": "python", "name": "broken", "source": BROKEN}], TWO_LABEL_ROWS,
         "graders[1]: broken (python) errored on each of the first 3 training rows"),
        ([{"kind": "python", "source": "def grade(sample, item):\n    while True:\n        pass\n",
           "time_limit": 0.2}], TWO_LABEL_ROWS, "time limit of 0.2 s"),
        ([{"kind": "string_check"}], RFT_ROWS, "item.reference: the row has no field 'reference'"),
    ]:
        with pytest.raises(ParameterError) as e:
            jt.tune(base_model=str(tiny_model_dir), train_dataset=rows, method="grpo", graders=graders)
        assert message in str(e.value) and "graders[" in str(e.value), str(e.value)
    assert JobStore().list() == []
    assert not [c for c in psutil.Process().children() if "spawn_main" in " ".join(c.cmdline())]  # probes ended


def test_grpo_job_with_label_match_and_a_broken_grader(tune_home, tiny_model_dir):
    """A few steps with a label_match grader and one that always raises: the job succeeds, the broken
    grader's answers score 0 and its errors are counted; rewards reach metrics.jsonl; the adapter loads."""
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=TWO_LABEL_ROWS, validation_dataset=TWO_LABEL_ROWS[:4],
                  method="grpo", max_steps=2, batch_size=4, num_generations=2, max_completion_length=4,
                  eval_steps=1, learning_rate=1e-3, evaluate_after=True, sample_prompts=1, precision="fp32",
                  max_seq_length=16,  # shorter than every prompt: each is cut to 12 tokens, said in the log
                  graders=[{"kind": "label_match"},
                           {"kind": "python", "name": "broken", "source": BREAKS_ON_ANSWERS}])
    assert job.wait(timeout=180) is jt.JobState.SUCCEEDED, job.log()
    rows = _rows(job)
    train = [r for r in rows if "train_total_loss" in r]
    evals = [r for r in rows if "eval_total_loss" in r]
    assert train and {"train_reward", "train_reward_std", "train_reward_label_match", "train_reward_broken",
                      "train_completion_length", "tokens_per_second", "train_grader_errors_broken"} <= set(train[0])
    assert all(r["train_reward_broken"] == 0.0 and r["train_grader_errors_broken"] == 1.0 for r in train)
    assert all(r["train_grader_errors_label_match"] == 0.0 for r in train)
    assert "train_fraction_of_correct_next_step_preds" not in train[0]
    assert evals and "eval_reward" in evals[-1] and "eval_reward_label_match" in evals[-1]
    rec = job.record
    assert rec["best"]["metric"] == "eval_reward"
    assert rec["tuning"]["method"].startswith("GRPO") and rec["tuning"]["num_generations"] == 2
    assert [g["name"] for g in rec["tuning"]["graders"]] == ["label_match", "broken"]
    log = job.log(400)
    assert "RuntimeError: boom" in log and "Grader broken (python):" in log
    # SUCCEEDED, but not silently: the grader that errored on every answer is a warning on the job
    warning = [w for w in rec["warnings"] if w.startswith("Grader broken (python)")]
    assert len(warning) == 1 and re.search(r"errored on (\d+) of \1 answers \(100%\)", warning[0]), rec["warnings"]
    assert "First error: broken: RuntimeError: boom" in warning[0] and f"Warning: {warning[0]}" in log
    assert not any("label_match" in w for w in rec["warnings"])
    assert "24 training prompts are longer than 12 tokens" in log and "they are cut" in log
    assert job.dataset_stats["train"]["truncated_example_count"] == 24 == job.dataset_stats["train"]["long_prompt_count"]
    assert (job.adapter_path / "adapter_config.json").is_file()
    assert jt.load_model(job, dtype="float32").adapter_path
    from jupyter_tune.widgets.charts import is_grpo, metrics_png
    from jupyter_tune.widgets.details import details_rows

    assert is_grpo(rows) and metrics_png(rows, 2)[:4] == b"\x89PNG"
    assert len(job.samples) > 0  # the sample answers at each evaluation (sample_prompts=1)
    # each step's sampled group, with each answer's rewards (completions.jsonl), and each evaluation's
    done = job.completions
    train_rows = done[done["mode"] == "train"]
    assert sorted(train_rows["step"].unique()) == [1, 2] and train_rows.groupby("step").size().eq(2).all(), done
    assert (train_rows["broken"] == 0.0).all() and train_rows["reward"].equals(train_rows["label_match"]), done
    assert set(train_rows["reference"]) <= {"Urology", "Neurology"} and (done["mode"] == "eval").any()
    from jupyter_tune.widgets.completions import CompletionsSection

    section = CompletionsSection()
    assert section.refresh(job.store, job.id) and section.step.value == 2 and section.layout.display is None
    assert section.table.value.count('class="jt-completion"') == 2 and "label_match" in section.table.value
    # the end-of-job report judges the answers as the job trained them: generated, scored by its graders
    ev = rec["evaluation"]
    assert ev["error"] is None and set(ev["graders"]) == {"label_match", "broken"}, ev
    assert ev["graders"]["broken"] == {"base": 0.0, "tuned": 0.0} and "label_match" in ev["headline"]
    assert job.evaluation.tuned.mode == "generate"
    details = dict(details_rows(rec))
    assert "label_match (label_match), broken (python)" in details["GRPO"]
    assert "raise RuntimeError" in details["Python grader broken"]  # the code that scored, as written


def test_the_panels_tune_cells_carry_grpo_parameters(tiny_model_dir, tmp_path):
    from jupyter_tune.cells.render import render_cells

    cells = render_cells("tune", {"base_model": str(tiny_model_dir), "method": "grpo",
                                  "train_dataset": str(tmp_path / "t.jsonl"), "num_generations": 2,
                                  "graders": [{"kind": "string_check", "operation": "ilike"}]})
    run_cell = cells[-1]["source"]
    assert "num_generations=2" in run_cell and "graders=[{'kind': 'string_check', 'operation': 'ilike'}]" in run_cell


# OpenAI's reinforcement rows: a prompt without an answer, and fields for the graders.
RFT_ROWS = [{"messages": [{"role": "user", "content": f"Say {w}, please ({i})."}], "reference_answer": w, "n": i}
            for i, w in enumerate(["apple", "river"] * 10)]
RFT_GRADER = {"kind": "string_check", "operation": "ilike", "reference": "{{ item.reference_answer }}"}


def test_grpo_cancel_and_resume_on_prompt_only_rows(tune_home, tiny_model_dir, monkeypatch):
    """Prompt-only rows (their fields read by the grader); cancelled after a checkpoint, the job keeps its
    adapter; jt.resume continues from the checkpoint to the last step."""
    from tests.support import faults
    from tests.support.waiting import wait_for

    with pytest.raises(ValueError, match="empty means label_match"):  # nothing for the default grader to read
        jt.tune(base_model=str(tiny_model_dir), train_dataset=RFT_ROWS, method="grpo")
    faults.inject(monkeypatch, faults.PAUSE_ENV, "step:60")  # held after step 1 (checkpointed) until cancelled
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=RFT_ROWS, method="grpo", max_steps=3,
                  batch_size=2, num_generations=2, max_completion_length=4, save_steps=1, num_threads=1,
                  precision="fp32", evaluate_after=False, graders=[RFT_GRADER])
    wait_for(lambda: job.store.latest_checkpoint(job.id) is not None, what="a checkpoint")
    job.cancel()
    assert job.wait(timeout=120) is jt.JobState.CANCELLED, job.log()
    assert (job.adapter_path / "adapter_config.json").is_file()
    stopped = int(job.metrics["step"].max())
    monkeypatch.delenv(faults.PAUSE_ENV)
    job = jt.resume(job.id)
    assert job.wait(timeout=180) is jt.JobState.SUCCEEDED, job.log()
    assert int(job.metrics["step"].max()) == 3 and stopped < 3
    assert "Resuming from" in job.log()
    assert "train_reward_string_check" in job.metrics and "0 errors" in job.log(400)


def test_the_cost_estimate_counts_grpo_steps_in_prompts(tiny_model_dir):
    """A step takes batch_size / num_generations prompts: the estimate's run length counts them."""
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.training.estimate import measure

    params = TuningParams(base_model=str(tiny_model_dir), method="grpo", batch_size=4, num_generations=2,
                          max_completion_length=4, epochs=1, precision="fp32", num_threads=1)
    result = measure(load_dataset(TWO_LABEL_ROWS), params, 2)
    assert result["total_steps"] == 12 and result["seconds_per_step"] > 0  # 24 prompts, 2 a step


def test_a_grpo_sweep_ranks_by_reward():
    from jupyter_tune.api.sweep import _objective

    assert _objective({"method": "grpo"}, None, "val.jsonl") == {"metric": "eval_reward", "direction": "maximize"}
    assert _objective({"method": "grpo"}, None, None) == {"metric": "train_reward", "direction": "maximize"}


def test_long_grpo_prompts_are_cut_as_training_cuts_them():
    from jupyter_tune.data.tokenize import _cut_middle
    from jupyter_tune.training.grpo import cut_prompts, prompt_room

    ids = [list(range(100)), list(range(10))]
    out, cut = cut_prompts(ids, 40)
    assert cut == 1 and out[0] == _cut_middle(list(range(100)), 40) and len(out[0]) == 40 and out[1] == ids[1]
    assert out[0][-10:] == list(range(90, 100)) and out[0][:20] == list(range(20))  # the turn's end is kept
    assert prompt_room(jt.TuningParams(method="grpo", max_seq_length=256, max_completion_length=32)) == 224
    assert prompt_room(jt.TuningParams(method="grpo", max_seq_length=64, max_completion_length=60)) == 16



def _grader_workers(pid: int) -> set[int]:
    """The grader worker processes (spawned, not zombies) under a job's process."""
    out = set()
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return out
    for c in children:
        try:
            if "spawn_main" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE:
                out.add(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.slow  # about 20 s on an idle machine, 45 s on a loaded one
def test_a_hanging_grader_does_not_stall_a_grpo_job(tune_home, tiny_model_dir):
    """Issue 33: a python grader that never returns on the model's answers, in a 20-step GRPO job. Each answer
    times out after 0.2 s and its worker process is killed and replaced: the job finishes, one worker at most
    runs at a time, none is left behind, and the last steps take no longer than the first."""
    job = jt.tune(base_model=str(tiny_model_dir), train_dataset=TWO_LABEL_ROWS, method="grpo", max_steps=20,
                  batch_size=2, num_generations=2, max_completion_length=4, precision="fp32", num_threads=1,
                  evaluate_after=False, save_steps=20,
                  graders=[{"kind": "label_match"},
                           {"kind": "python", "name": "hangs", "source": HANGS_ON_ANSWERS, "time_limit": 0.2}])
    seen, most, deadline = set(), 0, time.monotonic() + 240
    while not job.state.is_final and time.monotonic() < deadline:
        pid = job.record.get("pid")
        if pid:
            workers = _grader_workers(pid)
            seen |= workers
            most = max(most, len(workers))
        time.sleep(0.05)
    assert job.wait(timeout=60) is jt.JobState.SUCCEEDED, job.log()
    assert seen and most == 1, (seen, most)  # a worker ran, one at a time (killed before its successor starts)
    for worker in seen:  # none outlived the job
        assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE, worker
    train = sorted((r for r in _rows(job) if "train_total_loss" in r), key=lambda r: r["step"])
    assert [r["step"] for r in train] == list(range(1, 21))
    assert all(r["train_grader_errors_hangs"] == 1.0 for r in train)  # every answer timed out, every step
    durations = [b["time"] - a["time"] for a, b in zip(train, train[1:], strict=False)]
    first, last = sorted(durations[:5])[2], sorted(durations[-5:])[2]  # medians of the first and last five
    print(f"GRPO step durations with a hanging grader (s): first five median {first:.3f}, last five median "
          f"{last:.3f}; all: {', '.join(f'{d:.2f}' for d in durations)}")
    # no growth: with a thread per timed-out answer (the old runner) the spinning threads piled up and the steps
    # went from 2.6 s to 96 s (medians of the first and last five) in this job
    assert last < 2 * first + 0.5, durations
    assert first > 2 * 0.2  # each step waited out two time-limits: the grader was really called
    log = job.log(400)
    assert "hangs: ran past its time limit of 0.2 s" in log and "replaced" in log
    assert any(w.startswith("Grader hangs (python) errored on 40 of 40 answers") for w in job.record["warnings"])
