"""A run's stop switch that any thread may flip: it wakes the run's waits at once, wherever they are blocked."""

import contextlib
import os
import threading

from .errors import Cancelled


class Cancel:
    """Set from any thread; a run waiting on Docker watches `fileno()` in its select and stops when it is readable.

    The pipe behind it is made on first use and lives until `close()`; setting the switch after that does nothing,
    so no write can ever reach a descriptor the process has since reused.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pipe = None
        self._set = False
        self._closed = False
        self._wakers = []

    def fileno(self):
        with self._lock:
            if self._pipe is None:
                if self._closed:
                    raise ValueError("the cancel switch is closed")
                self._pipe = os.pipe()
                if self._set:
                    os.write(self._pipe[1], b"x")
            return self._pipe[0]

    def set(self):
        with self._lock:
            if not self._set and self._pipe is not None and not self._closed:
                os.write(self._pipe[1], b"x")
            self._set = True
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    @contextlib.contextmanager
    def waking(self, wake):
        """Within the block, setting the switch also calls wake(): for waits on a condition rather than a descriptor."""
        with self._lock:
            self._wakers.append(wake)
        try:
            yield
        finally:
            with self._lock:
                self._wakers.remove(wake)

    def is_set(self):
        return self._set

    def check(self):
        """Raise Cancelled if the switch was flipped."""
        if self._set:
            raise Cancelled("the run was cancelled")

    def close(self):
        with self._lock:
            if not self._closed and self._pipe is not None:
                os.close(self._pipe[0])
                os.close(self._pipe[1])
            self._closed = True
