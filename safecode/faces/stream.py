"""What `stream()` returns: one run's events as they come, with a way to stop it early from any thread."""

import queue
import threading
from typing import Callable, Generator, Union

from ..reader.protocol import Output
from ..result import Display, Result

Event = Union[Output, Display, Result]


class _Launcher:
    """Starts threads for callers that must never wait, such as an event loop.

    `Thread.start()` waits until the new thread runs, which with many busy threads is a wait for the GIL: with 100
    runs starting at once, an event loop calling it would stall for half a second. Here the caller only queues the
    work, and this one thread does the starting.
    """

    def __init__(self):
        self._work = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread = None

    def start(self, target):
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="safecode-launcher", daemon=True)
                self._thread.start()
        self._work.put(target)

    def _run(self):
        while True:
            threading.Thread(target=self._work.get(), name="safecode-stream", daemon=True).start()


_launcher = _Launcher()


class Stream:
    """The events of one run: Output pieces and Displays in the order the program made them, then its Result, last.

    Iterate it once. Leaving early (break, an exception, `close()`, or dropping it) kills the container at once.
    `cancel()` may be called from any other thread: the run stops at once and its iterator raises `Cancelled`.
    """

    def __init__(self, events: Generator[Event, None, None], cancel):
        self._events = events
        self._cancel = cancel

    def __iter__(self) -> "Stream":
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def result(self) -> Result:
        """Wait for the end; the Result (the rest of the output is in it, not handed out piece by piece)."""
        for item in self._events:
            if isinstance(item, Result):
                return item
        raise RuntimeError("the stream was already consumed")

    def cancel(self) -> None:
        """Stop the run from another thread; the container is removed by the thread iterating it."""
        self._cancel.set()

    def close(self) -> None:
        """Stop the run now if it has not ended, and remove its container."""
        self._cancel.set()
        try:
            self._events.close()
        except ValueError:  # another thread is inside it right now: the cancel switch stops it there
            pass

    def forward(self, deliver: Callable[[object], None]) -> None:
        """Iterate on a thread of its own, handing each event to `deliver`; an error is delivered in place of a Result.

        Returns at once, without waiting for the thread to start. The last call to `deliver` is a Result or an
        exception, and comes after the container's clean-up.
        """

        def pump():
            try:
                for item in self._events:
                    deliver(item)
            except BaseException as error:  # handed over, not lost: the consumer raises it on its own thread
                deliver(error)

        _launcher.start(pump)
