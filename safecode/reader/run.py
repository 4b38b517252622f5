"""The one reading loop: a handed-over container's bytes in, events out (Output pieces and Displays, then the Result).

`events()` owns the container from the handover to the end: it feeds the program's stdin, reads both streams through
protocol.Reader, keeps the time limit, the output limit and the cancel switch, and leaves nothing behind however it
ends, including when its consumer stops early (the generator closed or collected). `execute`, `stream`, the async
face, the CLI and the web server are all consumers of it.
"""

import os
import selectors
import stat
import subprocess
import time

from ..engine.ending import CHUNK, Selector
from ..engine.cli import connection_lost
from ..errors import CodeTooLarge
from .protocol import Reader
from ..result import Result

EXIT_POLL = 0.05  # seconds between looks at a client that is ending by itself
FILES_GRACE = 5.0  # seconds the returned files may take to come, from the program's end
OOM_EXIT = 137  # SIGKILL: we did not send it, so it was the kernel's OOM killer (or the program itself)


def events(container, deadline, *, stdin, max_output, started, cancel=None):
    """Yield the program's Output pieces and Displays as they come, then its Result; `deadline` comes from
    Container.hand_over."""
    reader = Reader(container.mark, container.end_mark, max_output, container.out_bytes)
    try:
        stopped = yield from pump(container, reader, stdin, deadline, cancel)
        if stopped == "timeout" and reader.ended:  # the program ended in time; its files did not all come
            reader.cut_files(f"they did not come within {FILES_GRACE:g} s")
            yield from reader.finish()
            container.stop()
            stopped, exit_code = None, reader.exit_code
        elif stopped:
            yield from stop_keeping_output(container, reader)
            exit_code = None
        elif reader.ended:
            yield from reader.finish()
            container.retire(not reader.leaving)  # its teardown, or its turn's end, is not the caller's wait
            exit_code = reader.exit_code
        else:
            yield from reader.finish()
            stopped, exit_code = ended_without_mark(container, reader, deadline, cancel)
            container.stop()
    except BaseException:
        container.stop()
        raise
    yield make_result(reader, stopped, exit_code, started)


def stop_keeping_output(container, reader):
    """Stop a container now, yielding what the program printed just before; the reader is finished."""
    container.kill_client()
    for name in ("stdout", "stderr"):
        if not reader.done(name):
            yield from reader.feed(name, container.drain(getattr(container.proc, name)))
    yield from reader.finish()
    container.stop()


def pump(container, reader, stdin, deadline, cancel):
    """Yield Output until both end marks (return None), or until a limit stops the run (return its status).

    `stdin` None leaves the container's stdin alone: a session speaks on it between cells.
    """
    proc = container.proc
    early, container.early = container.early, b""  # what came on stderr before the acknowledgement did
    if early:
        yield from reader.feed("stderr", early)
        if reader.truncated:
            return "output_limit"
    feed = _Input(proc.stdin, stdin if stdin is not None else b"", keep=stdin is None)
    with Selector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
        if cancel is not None:
            selector.register(cancel, selectors.EVENT_READ, "cancel")
        feed.start(selector)
        ended = False
        while not reader.done():
            if reader.ended and not ended:  # the program is over: what is left to read is its files
                ended, deadline = True, time.monotonic() + FILES_GRACE
                feed.stop(selector)  # and not one more byte of the caller's stdin is taken
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            for key, _ in selector.select(remaining):
                if key.data == "cancel":
                    cancel.check()
                elif key.data is feed:
                    feed.step(selector, key.fileobj)
                else:
                    yield from reader.feed(key.data, os.read(key.fd, CHUNK))
                    if reader.truncated:
                        return "output_limit"
                    if reader.done(key.data):
                        selector.unregister(key.fileobj)
    return None


class _Input:
    """The program's stdin, as frames on the container's stdin (d<size>\\n<bytes>, then e\\n at its end): bytes
    written as the pipe takes them, or a caller's file forwarded as it is read. Empty bytes send nothing: the go line
    said there is no stdin.

    A forwarded file is read only when what came before has been written, so a program that does not read its
    stdin never makes us hold more than one chunk. Only one of the two ends is watched at a time: `watched`. The
    container's stdin stays open: the supervisor speaks on it after the program (`keep`: a session's kernel does,
    and its cells' input comes with them).
    """

    def __init__(self, pipe, source, keep=False):
        self.pipe = pipe
        self.source = source if isinstance(source, int) else None
        self.pending = memoryview(frames(source) + b"e\n" if self.source is None and source else b"")
        self.watched = None
        self.keep = keep

    def start(self, selector):
        if self.keep:
            return
        os.set_blocking(self.pipe.fileno(), False)
        self._watch(selector, self.pipe if self.pending else self.source)

    def step(self, selector, ready):
        if ready is not self.pipe:  # the source said it is readable: this read does not block
            data = os.read(self.source, CHUNK)
            if not data:
                self.source = None
            self.pending = memoryview(frames(data) if data else b"e\n")
            return self._watch(selector, self.pipe)
        try:
            self.pending = self.pending[os.write(self.pipe.fileno(), self.pending[:CHUNK]) :]
        except BlockingIOError:
            return None
        except BrokenPipeError:  # the container has ended: its end is read from stdout
            return self.stop(selector)
        if not self.pending:
            return self._watch(selector, self.source) if self.source is not None else self.stop(selector)
        return None

    def stop(self, selector):
        """Send nothing more."""
        if self.keep:
            return
        self._watch(selector, None)
        self.source = None

    def _watch(self, selector, end):
        if self.watched is not None:
            selector.unregister(self.watched)
        self.watched = end
        if end is not None:
            selector.register(end, selectors.EVENT_WRITE if end is self.pipe else selectors.EVENT_READ, self)


def frames(data):
    """`data` as stdin frames for the supervisor."""
    return b"".join(b"d%d\n" % len(data[at : at + CHUNK]) + data[at : at + CHUNK] for at in range(0, len(data), CHUNK))


def program_source(code, limits):
    """The program as the container gets it: UTF-8, within `limits.max_code`; checked before Docker is touched."""
    if not isinstance(code, str):
        raise TypeError(f"code must be str, not {type(code).__name__}; e.g. execute('print(1)')")
    source = code.encode("utf-8")
    if len(source) > limits.max_code:
        raise CodeTooLarge(len(source), limits.max_code)
    return source


def input_source(stdin):
    """The program's stdin as `events` takes it: bytes, or the descriptor of a binary file to forward as it is read."""
    if isinstance(stdin, (bytes, bytearray)):
        return bytes(stdin)
    if isinstance(stdin, str):
        return stdin.encode("utf-8")
    if hasattr(stdin, "fileno"):
        fd = stdin.fileno()
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError("stdin is a directory")
        return fd
    raise TypeError(f"stdin must be str, bytes or a binary file, not {type(stdin).__name__}")


def wait_exit(proc, deadline, cancel):
    """The client's exit status once it has ended by itself, or None if it had not by `deadline`."""
    while True:
        if cancel is not None:
            cancel.check()
        try:
            return proc.wait(max(0.0, min(EXIT_POLL, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                return None


def ended_without_mark(container, reader, deadline, cancel):
    """(stopped, exit_code) of a container that ended without the supervisor's end mark, once both its streams closed.

    137 is the kernel's OOM killer at the memory limit; any other status means the sandbox itself gave up
    ("sandbox_error"), unless the client's last words say it lost its engine (DockerUnavailable is raised); a client
    that has not ended by `deadline` is a "timeout".
    """
    exit_code = wait_exit(container.proc, deadline, cancel)
    if exit_code is None:
        return "timeout", None
    if exit_code == OOM_EXIT:
        return None, exit_code
    lost = connection_lost(reader.text("stderr"), container.endpoint, container.name)
    if lost:
        raise lost
    return "sandbox_error", exit_code


def make_result(reader, stopped, exit_code, started, session_ended=False):
    oom_killed = stopped is None and exit_code == OOM_EXIT
    if stopped or oom_killed:
        status, exit_code = stopped or "oom", None
    elif exit_code is None:
        status = "error"  # the program forged an end mark with a status that is not a number
    else:
        status = "ok" if exit_code == 0 else "error"
    return Result(
        stdout=reader.text("stdout"),
        stderr=reader.text("stderr"),
        exit_code=exit_code,
        status=status,
        timed_out=stopped == "timeout",
        oom_killed=oom_killed,
        truncated=reader.truncated,
        duration=time.monotonic() - started,
        cpu_time=reader.cpu_time,
        peak_memory=reader.peak_memory,
        files=dict(reader.files),
        files_left_out=tuple(reader.files_left_out),
        displays=tuple(reader.displays),
        displays_left_out=tuple(reader.displays_left_out),
        session_ended=session_ended,
    )
