"""Valid and invalid values of each declared kind (params/kinds.py), built on the fuzzer's tiny files, jobs
and model. A valid value may still be refused by the data, job or model it names (a missing file, a job that
does not exist): that is the documented error's part, which the invariant allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from jupyter_tune.params import TRACKERS

from .declared import (
    JOB_IDS_BAD,
    PATHS_BAD,
    STEPS_BAD,
    STEPS_OK,
    STOPS_BAD,
    STOPS_OK,
    TEMPLATES_BAD,
    TEMPLATES_OK,
    KindStrategies,
    Opaque,
    fresh_dirs,
    late_unless,
)
from .rows import EVAL_ROWS, TRAIN_ROWS

# TuningParams' values the engine takes though they are not of the declared type (its __post_init__): "auto"
# for num_processes, one tracker's name for report_to (any other string is then refused by the trackers' rule,
# not by the field's type: a late refusal).
TUNE_ALIASES = {"num_processes": ("auto",), "report_to": TRACKERS}
TUNE_LATE = {"report_to": lambda v: isinstance(v, str)}

# The files a model-backed call may read: few rows each, so that a call that passes the gate generates little.
SMALL_FILES = ("eval", "prompts", "empty", "broken", "missing", "folder", "wrong_suffix")


def dataset_values(files: dict[str, Path], *, python_data: bool = True, small: bool = False
                   ) -> tuple[st.SearchStrategy, st.SearchStrategy]:
    """(valid, invalid) datasets: paths (str or Path) of good and bad files and, in Python, lists of rows and
    DataFrames, good and bad; ``small``: only the few-row ones."""
    chosen = {k: p for k, p in files.items() if not small or k in SMALL_FILES}
    good = [files["eval"]] if small else [files["train"], files["eval"]]
    paths: list[Any] = [str(p) for p in chosen.values()] + good + ["relative/none.jsonl"]
    lists: list[Any] = [] if small else [TRAIN_ROWS]
    lists += [EVAL_ROWS, tuple(EVAL_ROWS), [], [{}], [{"x": 1}], [{"input_text": None}],
              [{"input_text": "a", "output_text": float("nan")}], [{"input_text": 5, "output_text": [1]}]]
    frames = [pd.DataFrame(EVAL_ROWS), pd.DataFrame(), pd.DataFrame({"input_text": [1.5, None],
                                                                      "output_text": ["a", "b"]})]
    if not small:
        frames.append(pd.DataFrame(TRAIN_ROWS))
    valid_s = st.sampled_from(paths)
    if python_data:
        valid_s = st.one_of(valid_s, st.sampled_from(lists), st.sampled_from(frames))
    invalid = ["", "   ", 5, 1.5, True, {"input_text": "a"}, [1, 2], ["train.jsonl"], [TRAIN_ROWS[0], "x"],
               b"train.jsonl", Opaque(), {1, 2}]
    if not python_data:
        invalid += [TRAIN_ROWS, [], [{}]]
    return valid_s, st.sampled_from(invalid)


def kinds(files: dict[str, Path], *, store: Path, out: Path, jobs: tuple[Any, ...] = ("no-such-job",),
          models: tuple[Any, ...] = (), python_data: bool = True, small: bool = False) -> KindStrategies:
    """The kinds' strategies: ``jobs`` are valid job values (ids, handles, one that does not exist), ``models``
    valid model values (a loaded model, a folder, a job id, an unknown model id)."""
    in_store = [store, store / "jobs", store / "jobs" / "new-folder"]
    return KindStrategies({
        "dataset": dataset_values(files, python_data=python_data, small=small),
        "template": (st.sampled_from(TEMPLATES_OK), st.sampled_from(TEMPLATES_BAD)),
        "job": (st.sampled_from(jobs), st.sampled_from(JOB_IDS_BAD)),
        "path": (st.one_of(fresh_dirs(out), fresh_dirs(out).map(str), st.sampled_from(in_store),
                           st.sampled_from(existing_paths(out))),
                 st.sampled_from(PATHS_BAD)),
        "model_like": (st.sampled_from(models or ("no-such/model",)),
                       st.sampled_from([5, 1.5, True, None, [], ["x"], {"a": 1}, (1,), {1}])),
        "model": (st.sampled_from(models or ("no-such/model",)).filter(lambda m: isinstance(m, (str, Path))),
                  st.sampled_from(["", "   ", "\n", 5, True, None, ["x"]])),
        "stops": (st.sampled_from(STOPS_OK), st.sampled_from(STOPS_BAD)),
        "step": (st.sampled_from(STEPS_OK), st.sampled_from(STEPS_BAD)),
        # a list of bad graders passes the kind's own check (a list): its items are the entry point's rule
        "graders": (st.sampled_from(_graders_ok()),
                    st.sampled_from(GRADERS_BAD).map(late_unless(lambda v: not isinstance(v, (list, tuple))))),
    })


def existing_paths(out: Path) -> list[Path]:
    """Paths that exist already, to write to: a folder holding a file, and a file. Never the fuzzer's own data
    folder, which a call given overwrite=True would then change under the other examples."""
    folder = out / "existing-folder"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "keep.txt").write_text("not an export\n")
    (out / "existing-file.txt").write_text("a file\n")
    return [folder, out / "existing-file.txt"]


GRADERS_BAD = (5, "label_match", {"kind": "label_match"}, [5], [None], [{"kind": "nope"}], [{}], [{"type": 5}],
               [{"kind": "python"}], [{"kind": "python", "source": "def grade(:"}],
               [{"kind": "python", "source": "x = 1"}], [{"kind": "multi", "graders": []}],
               [{"kind": "label_match", "pass_threshold": "x"}], [{"kind": "label_match", "unknown_option": 1}],
               [{"kind": "string_check", "operation": "nope"}], [{"kind": "text_similarity", "pass_threshold": 2}],
               [Opaque()], [print], Opaque())


def _graders_ok() -> list:
    from jupyter_tune.graders import LabelMatch, StringCheck, TextSimilarity

    return [[], [LabelMatch()], [{"kind": "label_match"}], [LabelMatch(contains=True), TextSimilarity()],
            [{"kind": "string_check", "operation": "ilike", "reference": "{{ item.reference }}"}],
            [StringCheck(operation="like")]]
