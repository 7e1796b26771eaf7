"""Graders in the kinds OpenAI's fine-tuning graders use: each has ``name``, ``kind``, ``pass_threshold``,
``grade(sample, item) -> float in [0, 1]`` and ``to_json()``; ``grade_rows`` runs one over many rows safely
(a python grader given as source in its own worker process, under a finite time limit). Every constructor
checks its options: a bad one is a ``jupyter_tune.params.ParameterError`` naming it."""

from jupyter_tune.graders.base import (
    DEFAULT_TIME_LIMIT,
    Grader,
    GraderError,
    GradeResult,
    GraderSkipped,
    GraderTimeout,
    call_grader,
    check_grader,
    check_score,
    close_graders,
    constant_groups,
    grade_rows,
    render,
    safe_grade,
)
from jupyter_tune.graders.judge import ModelGrader, parse_score
from jupyter_tune.graders.label import LabelMatch
from jupyter_tune.graders.multi import Multi
from jupyter_tune.graders.python import PythonGrader
from jupyter_tune.graders.similarity import TextSimilarity
from jupyter_tune.graders.spec import grader_from_spec, graders_from_specs, probe_graders
from jupyter_tune.graders.string_check import StringCheck

__all__ = ["DEFAULT_TIME_LIMIT", "GradeResult", "Grader", "GraderError", "GraderSkipped", "GraderTimeout", "LabelMatch",
           "ModelGrader", "Multi", "PythonGrader", "StringCheck", "TextSimilarity", "call_grader", "check_grader",
           "check_score", "close_graders", "constant_groups", "grade_rows", "grader_from_spec", "graders_from_specs",
           "parse_score", "probe_graders", "render", "safe_grade"]
