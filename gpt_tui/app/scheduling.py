"""When to analyse: at most one forward pass at a time, and the newest text wins.

A plain class, so the policy is tested without a UI: the screen calls `text_changed` on every
change of the text and `finished` when a pass ends; `start(request_id, text)` (given by the screen)
launches the worker. Fast typing costs one pass at a time, never a queue.
"""

from __future__ import annotations

from collections.abc import Callable


class AnalysisScheduler:
    def __init__(self, start: Callable[[int, str], None]) -> None:
        self._start = start
        self.text = ""
        self.request_id = 0  # the latest pass asked for; results of older ones are stale
        self.started = 0  # passes started, counted (moving the selection must not add any)
        self._busy = False
        self._pending = False

    def text_changed(self, text: str) -> bool:
        """The text is now `text`. True when it is empty (nothing to analyse: clear the panels)."""
        self.text = text
        if not text:
            self.request_id += 1  # whatever runs now is stale
            self._pending = False
            return True
        self.request()
        return False

    def request(self) -> None:
        """Analyse the current text now, or as soon as the running pass ends."""
        if not self.text:
            return
        if self._busy:
            self._pending = True
            return
        self.request_id += 1
        self.started += 1
        self._busy = True
        self._pending = False
        self._start(self.request_id, self.text)

    def finished(self) -> None:
        """A pass ended (with a result or an error): start the newest text if it moved on."""
        self._busy = False
        if self._pending:
            self._pending = False
            self.request()

    def is_current(self, request_id: int, text: str) -> bool:
        return request_id == self.request_id and text == self.text
