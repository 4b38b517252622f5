"""Sessions: notebook-style cells in one container that keep their state, with every limit of a single run.

The container runs the session kernel (inside/kernel.py) instead of one program. Each cell has its own time limit:
past it the cell gets a KeyboardInterrupt (SIGINT, through Docker), and if it has not stopped a second later the
whole session ends, its container killed: a timed-out cell is never left running. Memory, CPU, processes and scratch
are the session's as a whole. A session ends by itself after `idle` seconds without a cell and after `lifetime`
seconds in all, however busy (its kernel keeps both; the host's clock is a second wall for the lifetime); closing
it, leaving its `with` block, garbage collection, interpreter exit and the death of its owner all remove its
container.
"""

import dataclasses
import math
import threading
import time
import weakref
from typing import Optional

from .. import engine
from ..cancel import Cancel
from ..engine.container import Stuck
from ..engine.shipping import KERNEL
from ..errors import SessionEnded
from ..files import files_in
from ..reader.protocol import Reader
from ..result import Result
from ..reader.run import ended_without_mark, make_result, program_source, pump, stop_keeping_output
from .stream import Stream

IDLE = 300.0  # seconds without a cell after which a session ends
LIFETIME = 3600.0  # seconds after which a session ends, however busy
INTERRUPT_GRACE = 1.0  # seconds an interrupted cell has to stop before its session is ended
CELL_ACK = 5.0  # seconds the kernel has to take a cell
LIFETIME_GRACE = 1.0  # seconds past a session's lifetime after which the host ends it, if its kernel has not


class Session:
    """Cells that share one interpreter: `with sandbox.session() as s: s.execute("x = 1"); s.execute("x + 1")`.

    `execute` and `stream` take the keywords of their Sandbox counterparts that fit a cell: `stdin` (text or bytes),
    `timeout` and `files`. One cell runs at a time; a call made meanwhile waits its turn. `alive` says whether the
    session can still run cells; once it cannot, they raise SessionEnded.
    """

    def __init__(self, sandbox, *, idle: float = IDLE, lifetime: float = LIFETIME) -> None:
        for name, value in (("idle", idle), ("lifetime", lifetime)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value < math.inf:
                raise ValueError(f"{name} must be a number of seconds, at least 1, not {value!r}")
        self.limits = sandbox.limits
        self._lock = threading.Lock()
        self._container, _ = sandbox._take(self.limits, None, lambda box: box.open_session(KERNEL, idle, lifetime))
        self._container.recycle = None  # a session keeps its container: it never goes back to a pool
        self._ends = time.monotonic() + lifetime + LIFETIME_GRACE  # the host's own wall, behind the kernel's
        self._ended = False
        self._finalizer = weakref.finalize(self, self._container.stop)

    def __repr__(self) -> str:
        return f"<Session {self._container.name} {'alive' if self.alive else 'ended'}>"

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """True while the session can run cells."""
        return not self._ended and self._container.proc.poll() is None

    def close(self) -> None:
        """End the session and remove its container; safe to call twice."""
        self._ended = True
        self._finalizer()

    def execute(self, code: str, *, stdin="", timeout: Optional[float] = None, files=None) -> Result:
        """Run one cell; its Result (stdout shows the value of a last expression, as the interpreter does)."""
        with self.stream(code, stdin=stdin, timeout=timeout, files=files) as run:
            return run.result()

    def stream(self, code: str, *, stdin="", timeout: Optional[float] = None, files=None) -> Stream:
        """Run one cell, yielding Output pieces and Displays as they come, then its Result. Leaving early ends the
        session."""
        started = time.monotonic()
        limits = self.limits if timeout is None else dataclasses.replace(self.limits, timeout=timeout)
        source = program_source(code, limits)
        if isinstance(stdin, str):
            stdin = stdin.encode("utf-8")
        if not isinstance(stdin, (bytes, bytearray)):
            raise TypeError(f"a cell's stdin must be str or bytes, not {type(stdin).__name__}")
        checked = files_in(files, limits.max_files)
        cancel = Cancel()
        return Stream(self._cell(source, bytes(stdin), checked, float(limits.timeout), started, cancel), cancel)

    def _cell(self, source, stdin, files, limit, started, cancel):
        try:
            with self._lock:
                if not self.alive or time.monotonic() >= self._ends:
                    self.close()
                    raise SessionEnded("the session has ended: start a new one")
                container = self._container
                try:
                    delivered = container.files_message(files, replace=True)
                    container.send(b"%d %d %r %d\n" % (len(source), len(stdin), limit, len(delivered)) + source + stdin
                                   + delivered)
                    if not container.read_ack(CELL_ACK, cancel):
                        raise Stuck("the session's kernel did not take the cell")
                    result = yield from self._run(container, time.monotonic() + limit, started, cancel)
                except (Stuck, BrokenPipeError):
                    self.close()
                    raise SessionEnded("the session has ended: its kernel is gone") from None
                except BaseException:
                    self.close()  # a cell left halfway (an error, Ctrl-C, a consumer that left) ends its session
                    raise
            yield result
        finally:
            cancel.close()

    def _run(self, container, deadline, started, cancel):
        reader = Reader(container.mark, container.end_mark, self.limits.max_output, container.out_bytes)
        stopped = yield from pump(container, reader, None, min(deadline, self._ends), cancel)
        if stopped == "timeout" and not reader.ended and time.monotonic() < deadline:  # the lifetime, not the cell's
            yield from stop_keeping_output(container, reader)  # limit: the kernel did not end itself, so end it here
            self.close()
            return make_result(reader, "timeout", None, started, session_ended=True)
        if stopped == "timeout" and not reader.ended:  # interrupt the cell; a second later, end the session
            engine.docker("kill", "--signal", "INT", container.name, timeout=10, endpoint=container.endpoint)
            interrupted = yield from pump(container, reader, None, time.monotonic() + INTERRUPT_GRACE, cancel)
            if interrupted is None and reader.ended:
                yield from reader.finish()
                return make_result(reader, "timeout", None, started)
        if stopped is None and reader.ended:
            yield from reader.finish()
            if reader.leaving:  # SystemExit: the kernel is gone, and its container with it
                self.close()
            return make_result(reader, None, reader.exit_code, started, session_ended=reader.leaving)
        exit_code = None
        if stopped is None:  # no end mark: the kernel was killed (the memory limit), and its container with it
            stopped, exit_code = ended_without_mark(container, reader, deadline, cancel)
        yield from stop_keeping_output(container, reader)
        self.close()
        return make_result(reader, stopped, exit_code, started, session_ended=True)
