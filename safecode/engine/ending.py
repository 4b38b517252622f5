"""How a sandbox container ends: the client killed, the container removed by name, its code folder removed.

The `docker run` client is only a messenger: killing it does not stop its container. So whenever a run ends early
(time limit, output limit, a cancel, or an exception in the caller such as Ctrl-C), the client is killed first, so it
can no longer start a container it has only created, and then the container is removed by name. A container whose
program has ended goes away by itself, off the caller's path, and is removed by force if it has not in time.
"""

import os
import selectors
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from . import cli

CHUNK = 32 * 1024
TEARDOWN_TIMEOUT = 10.0  # seconds a finished container has to go away by itself before it is removed by force
# Poll, not epoll: a caller's stdin may be a regular file, which epoll refuses.
Selector = getattr(selectors, "PollSelector", selectors.SelectSelector)

_teardowns = ThreadPoolExecutor(max_workers=4, thread_name_prefix="safecode-teardown")


class Ending:
    """The end of a Container's life (container.py), whatever way it comes; every method is safe to call twice.

    Uses the container's `proc` (the client), `name`, `endpoint`, `code_dir` and `recycle`.
    """

    killed = False  # whether we killed the client: then its container may still exist
    started = False  # whether it said it was ready: then the engine has made it, and a name not found is gone
    gone = None  # what to tell when it is stopped: its pool's wake-up

    def drain(self, pipe, limit=CHUNK):
        """What can be read from a pipe now, without waiting, up to `limit` bytes."""
        if pipe.closed:
            return b""
        os.set_blocking(pipe.fileno(), False)
        data = b""
        while len(data) < limit:
            try:
                chunk = os.read(pipe.fileno(), limit - len(data))
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def kill_client(self):
        """Kill the `docker run` client if it still runs. A client that ended by itself took its container along."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.killed = True

    def stop(self):
        """Stop now: kill the client, remove the container by name, remove the code; safe to call twice. A pool
        that counted on it coming back is told (`gone`)."""
        try:
            self.kill_client()
            if self.killed:
                self.killed = False  # one attempt: an engine that does not answer is not asked twice
                cli.remove(self.name, attempts=1 if self.started else cli.REMOVE_ATTEMPTS, endpoint=self.endpoint)
        finally:
            self._close()
            if self.gone is not None:
                self.gone()

    def discard(self):
        """Stop a container that will not run a program, off the caller's path, on a thread of its own: not queued
        behind teardowns, each of which may wait TEARDOWN_TIMEOUT for its container to go."""
        threading.Thread(target=self.stop, name="safecode-discard", daemon=True).start()

    def retire(self, reusable=False):
        """The program has ended: hand the container back for its next program when it is `reusable` and has a
        place to go (a pool's), else let it go away by itself; off the caller's path either way."""
        if reusable and self.recycle is not None:
            self.recycle(self)
        else:
            _teardowns.submit(self.teardown)

    def close_idle(self):
        """End a ready container gracefully: closing its stdin makes the supervisor, and the container, exit."""
        self.proc.stdin.close()

    def teardown(self):
        """Let a container that has finished, or was told to, end by itself; then make sure it is gone."""
        deadline = time.monotonic() + TEARDOWN_TIMEOUT
        try:
            with Selector() as selector:  # whatever it still says is read and dropped: a full pipe would hold it up
                for pipe in (self.proc.stdout, self.proc.stderr):
                    if not pipe.closed:
                        selector.register(pipe, selectors.EVENT_READ)
                while selector.get_map() and time.monotonic() < deadline:
                    for key, _ in selector.select(deadline - time.monotonic()):
                        try:
                            if not os.read(key.fd, 1 << 20):
                                selector.unregister(key.fileobj)
                        except BlockingIOError:  # left non-blocking by a drain, and nothing there after all
                            pass
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.stop()

    def _close(self):
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            pipe.close()
        self._remove_code()

    def _remove_code(self):
        if self.code_dir is not None:
            shutil.rmtree(self.code_dir, ignore_errors=True)


