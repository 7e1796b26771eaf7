"""Graders in the kinds OpenAI's fine-tuning graders use: each has ``name``, ``kind``, ``pass_threshold``,
``grade(sample, item) -> float in [0, 1]`` and ``to_json()``; ``grade_rows`` runs one over many rows safely."""

from jupyter_tune.graders.base import (
    Grader,
    GradeResult,
    GraderTimeout,
    check_score,
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
from jupyter_tune.graders.spec import grader_from_spec, graders_from_specs
from jupyter_tune.graders.string_check import StringCheck

__all__ = ["GradeResult", "Grader", "GraderTimeout", "LabelMatch", "ModelGrader", "Multi", "PythonGrader",
           "StringCheck", "TextSimilarity", "check_score", "constant_groups", "grade_rows", "grader_from_spec",
           "graders_from_specs", "parse_score", "render", "safe_grade"]
