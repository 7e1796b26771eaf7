"""jupyter_tune: fine-tune open language models from a notebook.

``import jupyter_tune as jt`` stays light: torch and transformers load only when a model is touched.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import Any

# bitsandbytes (QLoRA) warns at import on AVX512-BF16 CPUs that an optional kernel package, fetched from a
# model hub, is missing; its own fallback runs instead. Not for our users' cells. Set here, before any
# module of ours can import peft (which imports bitsandbytes).
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
# That same import asks the `kernels` package for the hub kernel; with HF_HUB_OFFLINE set it first logs
# "Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' ..." (every adapter load
# printed it: peft imports bitsandbytes). Only that notice is dropped; kernels' other messages stay.
_BNB_TRUST_NOTICE = "Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes'"
logging.getLogger("kernels._internals.hf_hub").addFilter(
    lambda record: not record.getMessage().startswith(_BNB_TRUST_NOTICE))
# bitsandbytes' default ops call torch.compile at import, which imports torch.utils.mkldnn, whose classes use
# the deprecated torch.jit.script_method: a DeprecationWarning per method wherever library deprecations show
# (python -W default, PYTHONWARNINGS). Not the user's code and not a path they took.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is (deprecated|not supported)",
                        category=DeprecationWarning)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "tune": "jupyter_tune.api.launch",
    "resume": "jupyter_tune.api.launch",
    "get_job": "jupyter_tune.api.job",
    "list_jobs": "jupyter_tune.api.job",
    "delete_job": "jupyter_tune.api.job",
    "TuningJob": "jupyter_tune.api.job",
    "JobState": "jupyter_tune.jobs.states",
    "JobStore": "jupyter_tune.jobs.store",
    "CheckpointError": "jupyter_tune.jobs.choice",
    "TuningParams": "jupyter_tune.params",
    "ParameterError": "jupyter_tune.params",
    "load_dataset": "jupyter_tune.data.loader",
    "validate_dataset": "jupyter_tune.data.loader",
    "dataset_stats": "jupyter_tune.data.stats",
    "check_dataset": "jupyter_tune.data.health",
    "split": "jupyter_tune.data.split",
    "DatasetError": "jupyter_tune.data.errors",
    "preview_dataset": "jupyter_tune.widgets.preview",
    "load_model": "jupyter_tune.models.loading",
    "generate_text": "jupyter_tune.generation",
    "evaluate": "jupyter_tune.evaluation",
    "compare": "jupyter_tune.evaluation",
    "baseline": "jupyter_tune.evaluation",
    "export": "jupyter_tune.export",
    "compare_jobs": "jupyter_tune.widgets.compare",
    "sweep": "jupyter_tune.api.sweep",
    "get_sweep": "jupyter_tune.api.sweep",
    "list_sweeps": "jupyter_tune.api.sweep",
    "Sweep": "jupyter_tune.api.sweep",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jupyter_tune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# -- Jupyter hooks --
def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "jupyter-tune"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_tune"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from .server.mcp_tools import mcp_status
    from .server.routes import setup_route_handlers

    setup_route_handlers(server_app.web_app)
    server_app.log.info("jupyter_tune server extension loaded")
    server_app.log.info(mcp_status())  # the agents' tools: served, or how to serve them


async def _start_jupyter_server_extension(server_app: Any) -> None:
    # The event loop runs now: start recording dead jobs and moving the queue (server/routes.Reconciler).
    from .server.routes import RECONCILER_SETTING

    reconciler = server_app.web_app.settings.get(RECONCILER_SETTING)
    if reconciler is not None:
        reconciler.start()
