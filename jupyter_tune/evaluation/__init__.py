"""Evaluation of base and tuned models: ``jt.evaluate`` and ``jt.compare``."""

from .compare import Comparison, compare
from .report import EvaluationReport
from .run import EvaluationError, evaluate

__all__ = ["evaluate", "compare", "EvaluationReport", "Comparison", "EvaluationError"]
