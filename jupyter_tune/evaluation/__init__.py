"""Evaluation of base and tuned models: ``jt.evaluate``, ``jt.baseline`` and ``jt.compare``."""

from .baseline import baseline
from .compare import Comparison, compare
from .report import EvaluationReport
from .run import EvaluationError, evaluate

__all__ = ["evaluate", "baseline", "compare", "EvaluationReport", "Comparison", "EvaluationError"]
