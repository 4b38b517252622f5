"""The public entry points: a Sandbox holds limits, an image and perhaps a warm pool; execute() runs one program."""

import collections
import dataclasses
import threading
import time
import weakref

from .errors import CodeTooLarge, DockerError
from .image import default_image
from .limits import Limits
from .pool import Pool, start_ready
from .runner import Stuck


class Sandbox:
    """Runs programs in fresh hardened containers, each with the same limits and image.

    With `warm=N` it keeps up to N containers started ahead of time, so a program starts in milliseconds rather
    than in the few hundred Docker needs; each still runs exactly one program. Close it (or use `with`) to remove
    them; they are also removed at interpreter exit, and end by themselves if this process dies.
    """

    def __init__(
        self,
        *,
        timeout=Limits.timeout,
        memory=Limits.memory,
        cpus=Limits.cpus,
        pids=Limits.pids,
        max_output=Limits.max_output,
        max_code=Limits.max_code,
        image=None,
        warm=0,
    ):
        self.limits = Limits(
            timeout=timeout, memory=memory, cpus=cpus, pids=pids, max_output=max_output, max_code=max_code
        )
        if image is not None and (not isinstance(image, str) or not image.strip()):
            raise ValueError(f"image must be an image name, not {image!r}")
        if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
            raise ValueError(f"warm must be a whole number of containers, 0 or more, not {warm!r}")
        self.image = image or default_image()
        self.warm = warm
        self._pool = Pool(warm, self.limits, self.image) if warm else None
        self._closer = weakref.finalize(self, self._pool.close) if self._pool else None
        self._runs = collections.Counter()
        self._runs_lock = threading.Lock()

    def __repr__(self):
        return f"Sandbox(image={self.image!r}, warm={self.warm}, limits={self.limits!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Remove every pooled container. Later programs still run, cold."""
        if self._closer:
            self._closer()

    def stats(self):
        """Programs handed to a warm container and to a cold one so far, and containers ready now."""
        with self._runs_lock:
            return {"warm": self._runs["warm"], "cold": self._runs["cold"],
                    "ready": self._pool.ready if self._pool else 0}

    def _count(self, kind):
        with self._runs_lock:
            self._runs[kind] += 1

    def execute(self, code, *, stdin="", timeout=None):
        """Run `code` as /app/main.py with `stdin` as its standard input; return a Result.

        `timeout`, if given, replaces the sandbox's own for this run only.
        """
        started = time.monotonic()
        limits = self.limits if timeout is None else dataclasses.replace(self.limits, timeout=timeout)
        source = _encode("code", code)
        if len(source) > limits.max_code:
            raise CodeTooLarge(len(source), limits.max_code)
        run = dict(source=source, stdin=_encode("stdin", stdin), timeout=limits.timeout,
                   max_output=limits.max_output, started=started)
        container = self._pool.take() if self._pool else None
        if container is not None:
            try:
                result = container.run(**run)
                self._count("warm")
                return result
            except Stuck:
                pass  # it never ran the program, and is gone: run it cold
        container = start_ready(limits, self.image)
        try:
            result = container.run(**run)
            self._count("cold")
            return result
        except Stuck as stuck:
            raise DockerError(-1, f"a new sandbox container did not take its program ({stuck})", container.argv)


def execute(
    code,
    *,
    stdin="",
    timeout=Limits.timeout,
    memory=Limits.memory,
    cpus=Limits.cpus,
    pids=Limits.pids,
    max_output=Limits.max_output,
    max_code=Limits.max_code,
    image=None,
):
    """Run `code` once in a fresh sandbox; each keyword overrides one limit. Returns a Result."""
    sandbox = Sandbox(
        timeout=timeout, memory=memory, cpus=cpus, pids=pids, max_output=max_output, max_code=max_code,
        image=image,
    )
    return sandbox.execute(code, stdin=stdin)


def _encode(what, value):
    if what == "stdin" and isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        kinds = "str or bytes" if what == "stdin" else "str"
        raise TypeError(f"{what} must be {kinds}, not {type(value).__name__}; e.g. execute('print(1)')")
    return value.encode("utf-8")
