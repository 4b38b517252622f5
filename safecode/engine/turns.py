"""Container starts take turns: at most one per core at once in this process."""

import contextlib
import os
import threading

# Containers this process starts at once, one per core. Docker starts only a handful a second (6-7 on two cores):
# asking for more at once starts none sooner, and leaves a hundred `docker` clients fighting the host for the CPU.
STARTS_AT_ONCE = os.cpu_count() or 2


class Turns:
    """At most `size` container starts at once in this process. A wait for a turn sleeps until a turn frees or its
    run is cancelled: with a hundred runs waiting, nothing wakes up to poll (a hundred threads polling fight an
    event loop for the GIL)."""

    def __init__(self, size):
        self._free = size
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def turn(self, cancel=None):
        with self._changed:
            with cancel.waking(self._wake_all) if cancel is not None else contextlib.nullcontext():
                while True:
                    if cancel is not None and cancel.is_set():
                        self._changed.notify()  # a turn it may have been woken for goes to the next in line
                        cancel.check()
                    if self._free:
                        break
                    self._changed.wait()
            self._free -= 1
        try:
            yield
        finally:
            with self._changed:
                self._free += 1
                self._changed.notify()

    def _wake_all(self):
        with self._changed:
            self._changed.notify_all()


turn = Turns(STARTS_AT_ONCE).turn
