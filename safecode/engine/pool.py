"""A warm pool: containers started ahead of time, each waiting for exactly one program, never reused."""

import collections
import contextlib
import threading
import time

from ..cancel import Cancel
from .container import new_name, start_ready

MAX_BACKOFF = 30.0  # seconds between attempts when containers fail to start (no image, no daemon)
TAKE_WAIT = 2.0  # seconds a caller may wait for a container already starting, rather than start one more
CHECK_EVERY = 2.0  # seconds between looks at idle containers, to replace any that died


class Pool:
    """Keeps up to `size` ready containers; a background thread replaces each one taken. Thread-safe."""

    def __init__(self, size, limits, image, endpoint, preload=(), first=None):
        """`preload`: the modules each container imports before it is ready; `first`: a ready container of
        these, started by the caller (to learn at once that they can be had), handed to the pool."""
        self.size, self._limits, self._image, self._endpoint = size, limits, image, endpoint
        self.preload = tuple(preload)
        self._ready = collections.deque([first] if first is not None else [])
        self._names = set()  # of the containers still starting
        self._starting = 0
        self._waiting = collections.deque()  # callers in take(), first come first
        self._failures = 0
        self._retry_at = 0.0
        self._closed = False
        self._lock = threading.Condition()
        self._stop_starts = Cancel()
        self.unfit = 0  # ready containers found dead or talking when a caller came for them
        threading.Thread(target=self._fill, name="safecode-pool", daemon=True).start()

    @property
    def names(self):
        """The names of the containers the pool holds: ready, or still starting."""
        with self._lock:
            return {container.name for container in self._ready} | self._names

    @property
    def ready(self):
        """How many containers are ready right now."""
        with self._lock:
            return len(self._ready)

    def take(self, wait=TAKE_WAIT, cancel=None):
        """A ready container, or None: the caller then runs cold.

        With none ready, a caller waits, at most `wait` seconds, only for a container already starting that no
        caller ahead of it will get: that one is sooner than a cold start, and Docker is not asked for more
        containers than there are callers. Callers are served first come, first served.
        """
        deadline = time.monotonic() + wait
        me = object()
        with self._lock, cancel.waking(self._wake_all) if cancel is not None else contextlib.nullcontext():
            self._waiting.append(me)
            try:
                while True:
                    while self._ready and self._waiting[0] is me:
                        container = self._ready.popleft()
                        if container.idle_ok():
                            return container
                        container.discard()  # it died, or said something, while idle: never handed out
                        self.unfit += 1
                    remaining = deadline - time.monotonic()
                    if self._closed or remaining <= 0 or self._waiting.index(me) >= len(self._ready) + self._starting:
                        return None
                    if cancel is not None:
                        cancel.check()
                    self._lock.wait(remaining)
            finally:
                self._waiting.remove(me)
                self._lock.notify_all()  # the next in line may take one now, or see that none will come

    def _wake_all(self):
        with self._lock:
            self._lock.notify_all()

    def close(self):
        """Remove every pooled container, including those still starting; the pool then stays empty."""
        with self._lock:
            self._closed = True
            ready, self._ready = list(self._ready), collections.deque()
            self._lock.notify_all()
        self._stop_starts.set()  # containers still starting are stopped where they are, not waited for
        for container in ready:
            container.close_idle()  # they all end at once...
        for container in ready:
            container.teardown()  # ...and are waited for, here: at interpreter exit no other thread may help
        with self._lock:
            while self._starting:  # each one still starting is stopped by the switch above, and ends itself
                self._lock.wait()
        self._stop_starts.close()

    def _prune(self):
        """Drop the ready containers that are no longer fit to run a program (called with the lock held)."""
        fit = collections.deque()
        for container in self._ready:
            if container.idle_ok():
                fit.append(container)
            else:
                container.discard()
        if len(fit) < len(self._ready):
            self._ready = fit
            self._lock.notify_all()

    def _fill(self):
        with self._lock:
            while not self._closed:
                self._prune()
                delay = self._retry_at - time.monotonic()
                if delay > 0:
                    self._lock.wait(min(delay, CHECK_EVERY))
                elif len(self._ready) + self._starting >= self.size:
                    self._lock.wait(CHECK_EVERY)
                else:
                    self._starting += 1
                    threading.Thread(target=self._start_one, name="safecode-pool-start", daemon=True).start()

    def _start_one(self):
        name = new_name()
        with self._lock:
            self._names.add(name)
        try:
            container = start_ready(self._limits, self._image, self._endpoint, self._stop_starts,
                                    preload=self.preload, name=name)
        except Exception:  # the same error reaches the caller from the cold run it falls back to
            container = None
        with self._lock:
            if container is None:
                self._failures += 1
                self._retry_at = time.monotonic() + min(MAX_BACKOFF, 0.25 * 2**self._failures)
            elif not self._closed:
                self._failures = 0
                self._ready.append(container)
                container = None
            if container is None:
                self._starting -= 1
                self._names.discard(name)
                self._lock.notify_all()
                return
        # The pool closed while this one started. It still counts as starting, so close() waits for it to be gone.
        try:
            container.close_idle()
            container.teardown()
        finally:
            with self._lock:
                self._starting -= 1
                self._names.discard(name)
                self._lock.notify_all()
