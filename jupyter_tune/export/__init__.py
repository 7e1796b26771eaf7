"""Take a tuned model out of the job store: ``jt.export(job, dest, format="merged" | "adapter" | "gguf")``.

Each export is checked against the tuned model (``ParityReport``) and recorded in the job's job.json.
Light to import: torch, transformers and the GGUF converter load inside the functions that use them.
"""

import sys
import types

from .api import FORMATS, export
from .parity import ParityReport

__all__ = ["FORMATS", "ParityReport", "export"]


class _CallableModule(types.ModuleType):
    """Importing this package binds ``jupyter_tune.export`` to it, over the lazy ``jt.export`` function:
    calling the package calls the function, so ``jt.export(job, dest)`` works before and after."""

    def __call__(self, /, *args, **kwargs):  # positional-only: a keyword named "self" reaches export's gate
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
