"""Runs at once in a server (the web example, the MCP server): a few run, a few more wait their turn for a bounded
time, and the rest are refused at once, so a flood of requests never becomes a flood of containers or threads."""

import threading


class Busy(Exception):
    """No run slot came free in time."""


class RunGate:
    """At most `slots` runs at once; `waiting` more (default twice as many) may wait, each for a bounded time."""

    def __init__(self, slots, waiting=None):
        self.slots = slots
        self._running = threading.BoundedSemaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + (waiting if waiting is not None else 2 * slots))

    def acquire(self, wait):
        """Take a run slot, waiting at most `wait` seconds for one; Busy if none. Returns the function that frees it."""
        if not self._admitted.acquire(blocking=False):
            raise Busy()
        if not self._running.acquire(timeout=wait):
            self._admitted.release()
            raise Busy()

        def release():
            self._running.release()
            self._admitted.release()

        return release

    def __call__(self, run, wait):
        release = self.acquire(wait)
        try:
            return run()
        finally:
            release()
