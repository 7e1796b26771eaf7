"""The jupyter-server extension: the REST API under ``/jupyter-tune/`` that the Tuning panel calls.

Thin on purpose: handlers parse the request, call the job store or the cell renderer, and answer JSON.
Never imports torch or transformers (tests/server/test_handlers.py checks it).
"""

from .routes import setup_route_handlers

__all__ = ["setup_route_handlers"]
