"""Runs in flight on the web server: which are live, and a streamed run as a WSGI body (safecode.faces.gate says how
many run at once)."""

import queue
import threading
import time

from safecode import Display, Output

KEEPALIVE = 0.5  # seconds of silence in a stream after which an empty line checks that the client is still there
END_WAIT = 30.0  # seconds a closed stream, or a stopping server, waits for runs to be gone
PIECES = (Output, Display)  # what a run sends before its last word


class LiveRuns:
    """The runs in progress, so that a server that stops ends them and removes their containers before it exits."""

    def __init__(self):
        self._runs = set()
        self._changed = threading.Condition()

    def add(self, run):
        with self._changed:
            self._runs.add(run)

    def done(self, run):
        with self._changed:
            self._runs.discard(run)
            self._changed.notify_all()

    def stop_all(self, wait=END_WAIT):
        """Cancel every run in progress and wait, at most `wait` seconds, until each has removed its container."""
        with self._changed:
            for run in self._runs:
                run.cancel()
            self._changed.wait_for(lambda: not self._runs, wait)


class StreamBody:
    """A WSGI body that sends a run's events as they come, one line each, rendered by `line(event)`.

    The run holds its slot (`release` frees it) from start to close. An empty line is sent after KEEPALIVE seconds of
    silence: writing it is how a dropped connection (a closed tab, a Stop button) is noticed. The server then calls
    close(), which ends the run, waits until its container is gone, and frees the slot.
    """

    def __init__(self, run, line, release, live):
        self.run, self.line, self.release = run, line, release
        self.events = queue.Queue()
        self.ended = False
        live.add(run)

        def deliver(item):
            self.events.put(item)
            if not isinstance(item, PIECES):  # its last word: the container is gone
                live.done(run)

        run.forward(deliver)

    def __iter__(self):
        while not self.ended:
            try:
                item = self.events.get(timeout=KEEPALIVE)
            except queue.Empty:
                yield b"\n"
                continue
            self.ended = not isinstance(item, PIECES)  # the last event is a Result, or the error that ended the run
            yield self.line(item)

    def close(self):
        try:
            if not self.ended:
                self.run.cancel()  # the client left before the end: stop the program and remove its container
                deadline = time.monotonic() + END_WAIT
                while not self.ended and time.monotonic() < deadline:
                    try:
                        self.ended = not isinstance(self.events.get(timeout=deadline - time.monotonic()), PIECES)
                    except queue.Empty:
                        break
        finally:
            self.release()
