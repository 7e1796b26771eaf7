"""Batched text generation with base or tuned models: ``jt.generate_text``."""

from .generate import RESULT_COLUMN, STATUS_COLUMN, generate_text

__all__ = ["generate_text", "RESULT_COLUMN", "STATUS_COLUMN"]
