"""ipywidgets views of tuning jobs: ``job.view()`` and ``jt.preview_dataset(...)``.

Every view reads the job store, so it works for any job from any kernel (after a restart too).
"""

from .view import JobView

__all__ = ["JobView"]
