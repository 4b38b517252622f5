"""The supervisor's protocol, read from the host side: a pure reader that turns the container's bytes into events.

The supervisor (supervisor.py) speaks on the container's stdout and stderr. Its messages start with a NUL byte and
a random token (the mark), so no ordinary output is mistaken for them:

    stdout: <mark>R              ready
    stdout: <mark>A              acknowledged the go line; the program starts now
    stderr: <mark>E              the program has ended: nothing of its stderr follows
    stdout: <mark>E<nnn>         the program has ended with exit status nnn (000-255): nothing of its stdout follows

Everything between the acknowledgement and the end marks is the program's own output. `Reader` finds the end marks,
however the bytes are split into chunks, decodes the output as UTF-8 (bytes that are not become U+FFFD) and keeps to
one byte budget shared by both streams. It does no I/O, so it is tested without Docker.
"""

import codecs
from typing import Dict, List, NamedTuple, Optional

READY, ACK, END = b"R", b"A", b"E"
STATUS_DIGITS = 3  # stdout's end mark carries the exit status as three digits
STREAMS = ("stdout", "stderr")


class Output(NamedTuple):
    """A piece of the program's output as it arrived: the stream ("stdout" or "stderr") and its text."""

    stream: str
    text: str


class _Stream:
    """One output stream: passes the program's bytes on, holding back any that may be the start of the end mark."""

    def __init__(self, end, status_size):
        self.end, self.size = end, len(end) + status_size
        self.held = b""  # bytes that may be the start of the end mark
        self.status = None  # what followed the end mark, once found
        self.closed = False
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pieces = []

    def feed(self, chunk):
        """The program's bytes in `chunk` that are certain not to be part of the end mark."""
        data = self.held + chunk
        at = data.find(self.end)
        if at >= 0:
            if len(data) - at >= self.size:
                self.status, self.held = data[at + len(self.end) : at + self.size], b""
            else:
                self.held = data[at:]
            return data[:at]
        keep = 0
        if b"\0" in data[-(len(self.end) - 1) :]:  # the mark starts with NUL: most chunks end with none
            keep = next((k for k in range(min(len(self.end) - 1, len(data)), 0, -1) if data.endswith(self.end[:k])), 0)
        self.held = data[len(data) - keep :]
        return data[: len(data) - keep]

    def flush(self):
        """At the end of the stream: what was held back was the program's after all."""
        held, self.held = self.held, b""
        return held

    @property
    def done(self):
        return self.closed or self.status is not None


class Reader:
    """Turns chunks of the container's stdout and stderr into Output events, and knows when the program ended.

    At most `max_output` bytes of output are passed on, from both streams together; past that `truncated` is set and
    the caller stops the container. Every piece passed on is also kept, so `text(stream)` is the pieces joined.
    """

    def __init__(self, mark: bytes, max_output: int):
        end = mark + END
        self._streams = {"stdout": _Stream(end, STATUS_DIGITS), "stderr": _Stream(end, 0)}
        self.room = max_output
        self.truncated = False

    def feed(self, stream: str, chunk: bytes) -> List[Output]:
        """What `chunk` of `stream` holds of the program's output; an empty chunk means the stream closed."""
        state = self._streams[stream]
        if not chunk:
            state.closed = True
            return self._emit(stream, state.flush())
        return self._emit(stream, state.feed(chunk))

    def finish(self) -> List[Output]:
        """At the very end, whatever happened: the bytes still held back, and the end of any split UTF-8 sequence."""
        events = []
        for stream, state in self._streams.items():
            events += self._emit(stream, state.flush(), final=True)
        return events

    def done(self, stream: Optional[str] = None) -> bool:
        """True once `stream` (or both) has its end mark or has closed."""
        if stream is not None:
            return self._streams[stream].done
        return all(state.done for state in self._streams.values())

    @property
    def ended(self) -> bool:
        """True once the supervisor has said the program ended (stdout's end mark, which carries the status)."""
        return self._streams["stdout"].status is not None

    @property
    def exit_code(self) -> Optional[int]:
        """The exit status in stdout's end mark; None if there was none, or the program forged one that is not a number."""
        status = self._streams["stdout"].status
        return int(status) if status is not None and status.isdigit() else None

    def text(self, stream: str) -> str:
        return "".join(self._streams[stream].pieces)

    def texts(self) -> Dict[str, str]:
        return {stream: self.text(stream) for stream in STREAMS}

    def _emit(self, stream, data, final=False):
        if len(data) > self.room:
            data = data[: self.room]
            self.truncated = True
        self.room -= len(data)
        state = self._streams[stream]
        text = state.decoder.decode(data, final)
        if not text:
            return []
        state.pieces.append(text)
        return [Output(stream, text)]
