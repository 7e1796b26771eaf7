"""The background poller the live widgets share (the job view, the compare view).

A daemon thread calls ``_tick()`` every ``poll_interval`` seconds until it returns True (nothing more will
come) or the widget is closed. ipykernel sends the comm updates a tick makes from any thread, so the
widgets move while other cells run. A failing tick (a half-written file, a busy disk) is tried again; ten
failures in a row stop the updates with the error shown in ``self.message``.
"""

from __future__ import annotations

import threading

from .. import theme
from .format import esc

MAX_ERRORS = 10


class LivePoller:
    """Mixin for a widget with ``poll_interval``, ``message`` (an HTML widget) and ``_tick() -> bool``."""

    poll_interval: float
    thread_name = "jt-poll"

    def _init_poller(self) -> None:
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: Exception | None = None  # the poller's latest failure, if any

    def _tick(self) -> bool:  # pragma: no cover - each widget defines it
        raise NotImplementedError

    @property
    def live(self) -> bool:
        """True while the background poller runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.live:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        errors = 0
        while not self._stop.wait(self.poll_interval):
            try:
                if self._tick():
                    return
                errors = 0
            except Exception as e:  # noqa: BLE001 - try again, give up after a while
                self.last_error = e
                errors += 1
                if errors >= MAX_ERRORS:
                    self.message.value = (f'<span style="{theme.ERROR_STYLE}">Live updates stopped: '
                                          f"{esc(type(e).__name__)}: {esc(e)}</span>")
                    return

    def close(self) -> None:
        self.stop()
        super().close()  # the widget's own close (the class this mixin is combined with)
