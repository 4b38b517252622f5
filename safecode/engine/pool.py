"""A warm pool: containers started ahead of time, each waiting for its program. With reuse, a container that ran a
program comes back, once its supervisor has cleared what the program left, for up to `reuse` programs in all."""

import collections
import contextlib
import threading
import time

from ..cancel import Cancel
from .container import new_name, start_ready

MAX_BACKOFF = 30.0  # seconds between attempts when containers fail to start (no image, no daemon)
TAKE_WAIT = 2.0  # seconds a caller may wait for a container already starting, rather than start one more
CHECK_EVERY = 2.0  # seconds between looks at idle containers, to replace any that died
REASONS = 20  # the latest reasons kept for containers found unfit


class Returns:
    """The part of a Pool that takes containers back between programs (reuse). Uses the Pool's lock, counts, and
    `_arrive`."""

    def _adopt(self, container):
        """Make `container` one of ours: it comes back here after each program that leaves it running."""
        if self.reuse > 1:
            container.runs_left = self.reuse - container.runs
            container.recycle = self._recycle
            container.gone = self._wake_all  # a run that stops it: its replacement starts now, not at the next look

    def _recycle(self, container):
        """Take back a container whose program has ended: it counts as starting until it is ready again."""
        with self._lock:
            self._out.discard(container)
            self._starting += 1
            self._names.add(container.name)
        threading.Thread(target=self._come_back, args=(container,), name="safecode-pool-back", daemon=True).start()

    def _come_back(self, container):
        why = "the pool was closed" if self._closed else container.take_back()
        if why is not None:
            self.reasons.append(f"{container.name} (after a program): {why}")
            container.stop()
        self._arrive(container if why is None else None, container.name)


class Wakes:
    """The part of a Pool that wakes who a change concerns: its own thread, and the callers in take(), each waiting on
    a condition of its own (so that a container coming back wakes one caller of a hundred waiting, not all of them,
    which would keep the GIL from every other thread, an asyncio loop's included). Uses the Pool's lock and line."""

    def _changed(self, everyone=True):
        """Wake the pool's thread, and every caller in line or, when the change is a container for it, the first.
        Called with the lock held."""
        self._lock.notify_all()
        for waiter in list(self._waiting)[: None if everyone else 1]:
            waiter.notify()

    def _wake_all(self):
        with self._lock:
            self._changed()


class Pool(Returns, Wakes):
    """Keeps up to `size` ready containers; a background thread replaces each one taken, or takes it back after its
    program (reuse). Thread-safe."""

    def __init__(self, size, limits, image, endpoint, preload=(), first=None, reuse=1):
        """`preload`: the modules each container imports before it is ready; `first`: a ready container of
        these, started by the caller (to learn at once that they can be had), handed to the pool; `reuse`: the
        programs each container runs, one after another, before it is replaced."""
        self.size, self._limits, self._image, self._endpoint = size, limits, image, endpoint
        self.reuse, self.preload = reuse, tuple(preload)
        self._ready = collections.deque([first] if first is not None else [])
        self._names = set()  # of the containers still starting (or coming back)
        self._out = set()  # containers running a program, that come back after it if it leaves them fit
        self._starting = 0
        self._waiting = collections.deque()  # callers in take(), first come first: each one's condition
        self._failures, self._retry_at, self._closed = 0, 0.0, False
        self._mutex = threading.RLock()  # the lock of the pool's condition and of each waiting caller's
        self._lock = threading.Condition(self._mutex)
        self._stop_starts = Cancel()
        self.unfit = 0  # ready containers found dead or talking when a caller came for them
        self.reasons = collections.deque(maxlen=REASONS)  # why, latest last (and why one could not come back)
        if first is not None:
            self._adopt(first)
        threading.Thread(target=self._fill, name="safecode-pool", daemon=True).start()

    @property
    def names(self):
        """The names of the containers the pool holds: ready, starting, coming back, or running a program after which
        they come back."""
        with self._lock:
            return {container.name for container in (*self._ready, *self._coming())} | self._names

    @property
    def ready(self):
        """How many containers are ready right now."""
        with self._lock:
            return len(self._ready)

    def take(self, wait=TAKE_WAIT, cancel=None):
        """A ready container, or None: the caller then runs cold.

        With none ready, a caller waits, at most `wait` seconds, for a container already starting that no caller
        ahead of it will get (sooner than a cold start, and no more starts than callers); with reuse, while the pool
        has any container, as each serves callers in turn: a burst larger than the pool queues, first come first
        served, rather than starting a container each."""
        deadline = time.monotonic() + wait
        me = threading.Condition(self._mutex)
        with self._lock, cancel.waking(self._wake_all) if cancel is not None else contextlib.nullcontext():
            self._waiting.append(me)
            try:
                while True:
                    while self._ready and self._waiting[0] is me:
                        container = self._ready.popleft()
                        if self._fit(container, "when taken"):
                            if container.runs_left > 1:
                                self._out.add(container)  # it comes back after this program
                            return container
                        self.unfit += 1
                    remaining = deadline - time.monotonic()
                    mine = self._waiting.index(me) < len(self._ready) + self._starting or self.reuse > 1 and (
                        self._ready or self._starting or self._coming())  # with reuse, each serves callers in turn
                    if self._closed or remaining <= 0 or not mine:
                        return None
                    if cancel is not None:
                        cancel.check()
                    me.wait(remaining)
            finally:
                self._waiting.remove(me)
                self._changed(everyone=False)  # the next in line may take one now (none is worse off)

    def close(self):
        """Remove every pooled container, including those still starting; the pool then stays empty."""
        with self._lock:
            self._closed = True
            ready, self._ready = list(self._ready), collections.deque()
            self._changed()
        self._stop_starts.set()  # containers still starting are stopped where they are, not waited for
        for container in ready:
            container.close_idle()  # they all end at once...
        for container in ready:
            container.teardown()  # ...and are waited for, here: at interpreter exit no other thread may help
        with self._lock:
            while self._starting:  # each one still starting is stopped by the switch above, and ends itself
                self._lock.wait()
        self._stop_starts.close()

    def _coming(self):
        """The containers out running a program that will come back: not stopped by their run, not kept by a
        session (which takes its container for good)."""
        return {container for container in self._out if container.recycle is not None and container.proc.poll() is None}

    def _fit(self, container, when):
        """Whether a ready container may take a program; one that may not (it died, or said something, while idle)
        is discarded, never handed out, and why is kept."""
        why = container.unfit()
        if why is not None:
            container.discard()
            self.reasons.append(f"{container.name} ({when}): {why}")
        return why is None

    def _prune(self):
        """Drop the ready containers that are no longer fit to run a program (called with the lock held)."""
        self._out = self._coming()
        fit = collections.deque(container for container in self._ready if self._fit(container, "idle"))
        if len(fit) < len(self._ready):
            self._ready = fit
            self._changed()

    def _fill(self):
        with self._lock:
            while not self._closed:
                self._prune()
                delay = self._retry_at - time.monotonic()
                if delay > 0:
                    self._lock.wait(min(delay, CHECK_EVERY))
                elif len(self._ready) + self._starting + len(self._coming()) >= self.size:
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
            self._adopt(container)
        except Exception:  # the same error reaches the caller from the cold run it falls back to
            container = None
        self._arrive(container, name, failed=container is None)

    def _arrive(self, container, name, failed=False):
        """A container that was starting (or coming back) is ready, or is not (None)."""
        with self._lock:
            if failed:
                self._failures += 1
                self._retry_at = time.monotonic() + min(MAX_BACKOFF, 0.25 * 2**self._failures)
            elif container is not None and not self._closed:
                self._failures = 0
                self._ready.append(container)
                container = None
            if container is None:
                self._starting -= 1
                self._names.discard(name)
                self._changed(everyone=not self._ready)
                return
        # The pool closed while this one started. It still counts as starting, so close() waits for it to be gone.
        try:
            container.close_idle()
            container.teardown()
        finally:
            with self._lock:
                self._starting -= 1
                self._names.discard(name)
                self._changed(everyone=not self._ready)
