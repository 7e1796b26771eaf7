"""Notebook cells the side panel inserts: one Jinja template per cell, filled with Python literals.

User values enter a cell only through the ``pylit`` filter (``repr`` of a checked JSON value), so a
display name with quotes or newlines stays data and never becomes code. Torch-free: the server imports it.
"""

from .render import ACTIONS, Action, CellsError, actions, pylit, render_cells

__all__ = ["ACTIONS", "Action", "CellsError", "actions", "pylit", "render_cells"]
