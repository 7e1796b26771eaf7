"""Graders that cannot stall a job (issue 33): a python grader given as source runs in a spawned worker process
that is killed and replaced past its time limit and never outlives its grader or its parent; a function grader
that hangs leaves one thread at most; SystemExit and KeyboardInterrupt are row errors; every option is checked
when the grader is made (ParameterError naming it)."""

import gc
import math
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from jupyter_tune.graders import (
    DEFAULT_TIME_LIMIT,
    LabelMatch,
    ModelGrader,
    Multi,
    PythonGrader,
    StringCheck,
    TextSimilarity,
    close_graders,
    grade_rows,
    grader_from_spec,
    graders_from_specs,
    safe_grade,
)
from jupyter_tune.params import ParameterError

ROW = {"prompt": "Capital of France?", "reference": "Paris"}
EXACT = "def grade(sample, item):\n    return float(sample == item['reference'])\n"
SPINS = "def grade(sample, item):\n    while True:\n        pass\n"


def _workers() -> set[int]:
    """This process's grader workers (spawned children; the resource tracker is not one)."""
    out = set()
    for c in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE:
                out.add(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture
def no_new_workers():
    """Fails the test if it leaves a grader worker process of its own behind."""
    before = _workers()
    yield before
    gc.collect()
    assert _workers() - before == set()


def _gone(pid: int, within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


# -- the worker process (a python grader given as source) --

def test_a_source_grader_runs_in_one_worker_process_kept_across_rows(no_new_workers):
    with PythonGrader(source=EXACT, name="exact") as g:
        result = grade_rows(g, ["Paris", "Lyon"] * 10, [ROW] * 20)
        assert result.scores == [1.0, 0.0] * 10 and not result.errors
        pid = g.worker_pid
        assert pid is not None and pid != os.getpid() and g._worker.starts == 1
        assert psutil.Process(pid).ppid() == os.getpid()
        assert "spawn_main" in " ".join(psutil.Process(pid).cmdline())  # spawned, never forked
        assert g.to_json()["source"] == EXACT and g.to_json()["time_limit"] == DEFAULT_TIME_LIMIT
    assert g.worker_pid is None and _gone(pid)
    assert grade_rows(g, ["Paris"], [ROW]).scores == [1.0]  # a closed grader starts a worker again
    g.close()


def test_a_hanging_source_grader_is_killed_and_replaced(no_new_workers):
    g = PythonGrader(source="def grade(sample, item):\n    while sample == 'hang':\n        pass\n    return 1.0\n",
                     time_limit=0.2, name="spins")
    start = time.monotonic()
    results, pids = [], []
    for sample in ["ok", "hang", "hang", "ok", "hang"]:  # one row at a time, as GRPO's steps come
        results.append(grade_rows(g, [sample], [ROW]))
        pids.append(g.worker_pid)
    assert time.monotonic() - start < 5
    assert [r.scores[0] for r in results] == [1.0, 0.0, 0.0, 1.0, 0.0]
    assert "time limit of 0.2 s" in results[1].errors[0][1] and "replaced" in results[1].errors[0][1]
    assert sum(r.skipped for r in results) == 0  # a worker process is replaced: every row is graded
    assert g._worker.starts == 4 and len(set(pids)) == 4  # the first and one replacement per time-out
    assert pids[0] == pids[1] or _gone(pids[0])
    assert all(_gone(pid) for pid in set(pids) - {pids[-1]})  # the killed ones are gone
    assert _workers() - no_new_workers == {pids[-1]}  # one idle replacement waits
    del g
    gc.collect()  # garbage collection stops the worker
    assert _gone(pids[-1])


def test_the_literal_spinning_grader_leaves_nothing_running(no_new_workers):
    with PythonGrader(source=SPINS, time_limit=0.2) as g:
        result = grade_rows(g, ["a", "b", "c"], [ROW] * 3)
        assert result.scores == [0.0] * 3 and len(result.errors) == 3
        assert _workers() - no_new_workers == {g.worker_pid}
        # the replacement waits, it does not spin: once it has started (imports take CPU), it idles
        replacement = psutil.Process(g.worker_pid)
        assert any(replacement.cpu_percent(0.2) < 50 for _ in range(50))
    assert _workers() - no_new_workers == set()


@pytest.mark.parametrize("source", ["def grade(sample, item):\n    raise SystemExit(3)\n",
                                    "def grade(sample, item):\n    raise KeyboardInterrupt('stop')\n"])
def test_system_exit_and_keyboard_interrupt_are_row_errors(source, no_new_workers):
    name = "SystemExit" if "SystemExit" in source else "KeyboardInterrupt"
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - the same function, passed as a callable (thread path)
    for g in (PythonGrader(source=source, time_limit=5), PythonGrader(namespace["grade"], time_limit=5),
              Multi([PythonGrader(source=source, name="part")])):
        result = grade_rows(g, ["a", "b"], [ROW, ROW])
        assert result.scores == [0.0, 0.0] and len(result.errors) == 2, result
        assert name in result.errors[0][1]
        close_graders([g])


def test_worker_failures_are_row_errors_and_a_source_that_fails_to_run_fails_fast(no_new_workers):
    with PythonGrader(source="import os\ndef grade(sample, item):\n    os._exit(7)\n", time_limit=5) as g:
        result = grade_rows(g, ["a", "b"], [ROW, ROW])
        assert len(result.errors) == 2 and "exit code 7" in result.errors[0][1] and "a new one" in result.errors[0][1]
    with PythonGrader(source="x = 1 / 0\ndef grade(sample, item):\n    return 1.0\n", time_limit=5) as g:
        start = time.monotonic()
        result = grade_rows(g, ["a"] * 4, [ROW] * 4)
        assert len(result.errors) == 4 and "ZeroDivisionError" in result.errors[3][1]
        assert g._worker.starts == 1 and time.monotonic() - start < 5  # not restarted for every row
    with PythonGrader(source="grade = lambda sample: 1.0", time_limit=5) as g:  # arity known only once run
        assert "cannot be called as grade(sample, item)" in safe_grade(g, "a", ROW)[1]
    for value, message in ((math.nan, "NaN"), (1.5, "outside [0, 1]"), ("'high'", "not a number")):
        with PythonGrader(source=f"def grade(sample, item):\n    return {value}\n".replace("nan", "float('nan')")) as g:
            assert message in safe_grade(g, "a", ROW)[1]


class _Interrupted(Exception):
    pass


def test_an_interrupted_call_does_not_leave_its_answer_for_the_next_row(no_new_workers):
    """Ctrl-C (here a signal whose handler raises) while waiting for an answer: the next row gets its own."""
    source = ("import time\ndef grade(sample, item):\n    if sample == 'slow':\n        time.sleep(2)\n"
              "        return 0.0\n    return 1.0\n")

    def interrupt(signum, frame):
        raise _Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    try:
        with PythonGrader(source=source, time_limit=5) as g:
            assert g.grade("fast", ROW) == 1.0
            timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1))
            timer.start()
            with pytest.raises(_Interrupted):
                g.grade("slow", ROW)
            timer.join()
            assert g.grade("fast", ROW) == 1.0  # not the slow row's 0.0
    finally:
        signal.signal(signal.SIGUSR1, previous)


_SCRIPT = """
import sys, time
from jupyter_tune.graders import PythonGrader, grade_rows
print("top level", flush=True)  # no `if __name__ == '__main__':` guard: the worker must not run this again
g = PythonGrader(source="def grade(sample, item):\\n    return 1.0\\n")
assert grade_rows(g, ["a"], [{}]).scores == [1.0]
print(g.worker_pid, flush=True)
if sys.argv[1] == "wait":
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["exits", "is killed"])
def test_the_worker_ends_with_its_parent(how, tmp_path):
    """Never closed: the worker still ends when its parent script exits (atexit) or is killed (it watches its
    parent), and the script's top level is not run again in the worker."""
    script = tmp_path / "grade_script.py"
    script.write_text(_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), "wait" if how == "is killed" else "exit"],
                            stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    assert proc.stdout.readline().strip() == "top level"
    pid = int(proc.stdout.readline())
    if how == "is killed":
        assert psutil.pid_exists(pid)
        proc.send_signal(signal.SIGKILL)
    else:
        assert proc.stdout.read() == ""  # nothing printed again by the worker
    proc.wait(30)
    proc.stdout.close()
    assert _gone(pid), f"worker {pid} outlived its parent"


# -- a function (thread path) --

def test_a_hanging_function_leaves_one_thread_and_the_report_says_so():
    release = threading.Event()

    def hangs(sample, item):
        release.wait(30)
        return 1.0

    g = PythonGrader(hangs, name="hangs", time_limit=0.2)
    try:
        start = time.monotonic()
        result = grade_rows(g, ["a"] * 5, [ROW] * 5)
        again = grade_rows(g, ["a"] * 3, [ROW] * 3)  # the next GRPO step: still not called
        assert time.monotonic() - start < 2
        threads = [t for t in threading.enumerate() if t.name.startswith("jupyter-tune-grader")]
        assert len(threads) == 1
        assert result.scores == [0.0] * 5 and "time limit of 0.2 s" in result.errors[0][1]
        assert result.skipped == 4 and all("skipped" in m and "time limit" in m for _, m in result.errors[1:])
        summary = result.summary()
        assert summary["skipped"] == 4 and summary["errors"] == 5 and "not called again" in summary["note"]
        assert again.skipped == 3
        # a multi grader with that part: skipped too, and counted as such
        assert grade_rows(Multi([StringCheck(), g]), ["Paris"], [ROW]).skipped == 1
    finally:
        release.set()
    threads[0].join(5)
    assert grade_rows(g, ["a"], [ROW]).scores == [1.0]  # once that call ended, it is called again
    ok = PythonGrader(lambda s, i: 1.0, name="ok")
    assert grade_rows(ok, ["a"], [ROW]).summary()["skipped"] == 0 and "note" not in grade_rows(ok, ["a"], [ROW]).summary()


def test_a_hanging_judge_is_abandoned_once():
    release = threading.Event()
    judge = ModelGrader(lambda prompt: release.wait(30) and "10", time_limit=0.2)
    try:
        result = grade_rows(judge, ["a"] * 3, [ROW] * 3)
        assert result.skipped == 2 and "time limit" in result.errors[0][1]
    finally:
        release.set()


# -- options checked when the grader is made --

@pytest.mark.parametrize(("make", "names"), [
    (lambda: PythonGrader(lambda s, i: 1.0, time_limit=None), "time_limit=None"),
    (lambda: PythonGrader(lambda s, i: 1.0, time_limit=math.inf), "time_limit=inf"),
    (lambda: PythonGrader(lambda s, i: 1.0, time_limit=0), "time_limit=0"),
    (lambda: PythonGrader(lambda s, i: 1.0, pass_threshold="x"), "pass_threshold='x'"),
    (lambda: PythonGrader(lambda s, i: 1.0, name=""), "name=''"),
    (lambda: PythonGrader(lambda sample: 1.0), "cannot be called as grade(sample, item)"),
    (lambda: PythonGrader(lambda s, i, extra: 1.0), "cannot be called as grade(sample, item)"),
    (lambda: PythonGrader("not callable"), "fn='not callable'"),
    (lambda: PythonGrader(), "give fn"),
    (lambda: PythonGrader(source="def grade(sample):\n    return 1.0\n"), "cannot be called as grade(sample, item)"),
    (lambda: PythonGrader(source="def grade(sample, item) return 1"), "does not compile"),
    (lambda: PythonGrader(source="x = 1"), "must define grade(sample, item)"),
    (lambda: PythonGrader(source="async def grade(sample, item):\n    return 1\n"), "async def grade"),
    (lambda: StringCheck(reference=5), "reference=5"),
    (lambda: StringCheck(reference=None), "reference=None"),
    (lambda: StringCheck(reference=" "), "reference=' '"),
    (lambda: StringCheck(operation="contains"), "operation='contains'"),
    (lambda: StringCheck(strip="yes"), "strip='yes'"),
    (lambda: StringCheck(input="{{ sample.text }}"), "sample.text is unknown"),
    (lambda: TextSimilarity(pass_threshold=1.5), "pass_threshold=1.5"),
    (lambda: TextSimilarity(pass_threshold=math.nan), "pass_threshold=nan"),
    (lambda: TextSimilarity(evaluation_metric="cosine"), "evaluation_metric='cosine'"),
    (lambda: LabelMatch(pass_threshold=True), "pass_threshold=True"),
    (lambda: LabelMatch(choices="Urology"), "choices='Urology'"),
    (lambda: LabelMatch(contains=1), "contains=1"),
    (lambda: ModelGrader(judge="nope"), "judge='nope'"),
    (lambda: ModelGrader(judge=lambda: "1"), "cannot be called as judge(prompt)"),
    (lambda: ModelGrader(judge=lambda p: "1", time_limit=None), "time_limit=None"),
    (lambda: ModelGrader(judge=lambda p: "1", scale=0), "scale=0"),
    (lambda: Multi([]), "graders=[]"),
    (lambda: Multi([5]), "graders[0]: 5 is not a grader"),
    (lambda: Multi([StringCheck()], weights=[math.nan]), "weights=[nan]"),
    (lambda: Multi([StringCheck()], weights=[1, 2]), "weights=[1, 2]"),
    (lambda: Multi([StringCheck()], pass_threshold=-1), "pass_threshold=-1"),
])
def test_bad_options_are_refused_when_the_grader_is_made(make, names):
    with pytest.raises(ParameterError) as e:
        make()
    assert names in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)


def test_a_time_limit_given_to_the_runner_must_be_finite():
    for bad in (math.inf, -1, "1"):
        with pytest.raises(ParameterError, match="time_limit"):
            grade_rows(StringCheck(), ["Paris"], [ROW], time_limit=bad)
    assert grade_rows(StringCheck(), ["Paris"], [ROW], time_limit=1).scores == [1.0]
    assert PythonGrader(lambda s, i: 1.0).time_limit == DEFAULT_TIME_LIMIT
    assert ModelGrader(lambda p: "1").time_limit > 0
    with PythonGrader(source="def grade(s, i, extra=None):\n    return 1.0\n") as g:  # extra defaults are fine
        assert g.grade("a", ROW) == 1.0


def test_bad_specs_name_the_option():
    cases = [({"kind": "string_check", "pass_treshold": 0.5}, "'pass_treshold' (did you mean 'pass_threshold'?)"),
             ({"kind": "string_check", "pass_threshold": "x"}, "pass_threshold='x'"),
             ({"kind": "string_check", "reference": 5}, "reference=5"),
             ({"kind": "python", "source": "def grade(sample):\n    return 1\n"}, "grade(sample, item)"),
             ({"kind": "python", "source": EXACT, "time_limit": None}, "time_limit=None"),
             ({"kind": "python", "source": EXACT, "fn": "x"}, "unknown option 'fn'"),
             ({"kind": "multi", "graders": [{"kind": "label_match", "colour": 1}]}, "graders[0]: label_match: unknown"),
             ({"kind": "text_similarity", "evaluation_metric": "bleu", "input": ""}, "input=''")]
    for spec, message in cases:
        with pytest.raises(ParameterError) as e:
            grader_from_spec(spec)
        assert message in str(e.value), (spec, str(e.value))
    with pytest.raises(ParameterError) as e:
        graders_from_specs([{"kind": "label_match"}, cases[0][0]])
    assert e.value.problems[0].startswith("graders[1]: ") and "pass_treshold" in e.value.problems[0]
    g = grader_from_spec({"type": "python", "source": EXACT, "time_limit": 0.5, "name": "exact"})
    assert isinstance(g, PythonGrader) and g.source == EXACT and g.fn is None and g.time_limit == 0.5
    assert grader_from_spec(g.to_json()).to_json() == g.to_json()  # a spec round-trips


def test_probe_refuses_a_grader_that_errors_on_every_first_row(no_new_workers):
    from jupyter_tune.data.loader import load_dataset
    from jupyter_tune.graders import probe_graders

    rows = [{"input_text": f"Row {i}", "output_text": "Paris"} for i in range(5)]
    examples = load_dataset(rows).examples
    probe_graders([{"kind": "label_match"}, {"kind": "python", "source": EXACT}], examples)  # both grade
    with pytest.raises(ParameterError) as e:
        probe_graders([{"kind": "label_match"}, {"kind": "python", "name": "spins", "source": SPINS,
                                                 "time_limit": 0.2}], examples)
    assert "graders[1]: spins (python) errored on each of the first 3" in str(e.value)
    assert "time limit of 0.2 s" in str(e.value)
    with pytest.raises(ParameterError, match=r"graders\[0\].*item\.reference_answer: the row has no field"):
        probe_graders([{"kind": "string_check", "reference": "{{ item.reference_answer }}"}], examples)
    # a grader that errors only on some rows is the job's to report, not refused
    probe_graders([{"kind": "python", "source": "def grade(sample, item):\n"
                                                "    return 1.0 if 'Row 1' in str(item) else 1 / 0\n"}], examples)
