"""A probe for tests of things that must not run too many at once."""

from __future__ import annotations

import threading


class Overlap:
    """Counts the threads inside `with overlap:` at the same time; `peak` is the most it saw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = self.peak = 0

    def __enter__(self) -> Overlap:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        return self

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.active -= 1
