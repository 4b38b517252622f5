"""The supervisor's protocol, read from the host side: a pure reader that turns the container's bytes into events.

The supervisor (supervisor.py) speaks on the container's stdout and stderr. Its messages start with a NUL byte and
a random token, so no ordinary output is mistaken for them: the container's (the mark, which its programs know, and
use to frame their displays) or the program's own (the end, which no program ever holds):

    stdout: <mark>R              ready
    stdout: <mark>A              acknowledged the go line; the program starts now
    stderr: <end>E<cpu><mem><L>  the program has ended: nothing of its stderr follows (its CPU time in µs and peak
                                 memory in bytes, 12 digits each; L is 1 when the container ends with it: after
                                 its last program, and after a session's cell that ended the session)
    stdout: <end>E<nnn>          the program has ended with exit status nnn (000-255): nothing of its stdout follows

Everything between the acknowledgement and the end marks is the program's own output. With scratch on, the files
the program left in /app/out follow stdout's end mark up to a final Z (returned.py reads them).

`Reader` finds the end marks, however the bytes are split into chunks, decodes the output as UTF-8 (bytes that are
not become U+FFFD), keeps to one byte budget shared by both streams, and reads the returned files within the scratch
size and a count, whatever a hostile program forges. It does no I/O, so it is tested without Docker.
"""

import codecs
from typing import Dict, List, NamedTuple, Optional, Union

from ..result import Display
from .displays import Displays, Frame, read_frame
from .returned import ReturnedFiles

READY, ACK, END, DISPLAY = b"R", b"A", b"E", b"D"
STATUS_DIGITS = 3  # stdout's end mark carries the exit status as three digits
USAGE_DIGITS = 12  # stderr's carries the CPU time (µs) and the peak memory (bytes), twelve digits each
STREAMS = ("stdout", "stderr")


class Output(NamedTuple):
    """A piece of the program's output as it arrived: the stream ("stdout" or "stderr") and its text."""

    stream: str
    text: str


class _Stream:
    """One output stream: splits the program's bytes from the messages in it, holding back any bytes that may be the
    start of one. The end mark (`end`, the program's own token, which the program never had) ends the stream; on
    stdout, display frames come marked with the container's `mark`, which the program knows: they are its own. A mark
    followed by anything else is the program's own bytes."""

    def __init__(self, mark, end, status_size, frames=False):
        self.marks = (end, mark) if frames else (end,)
        self.status_size = status_size
        self.held = b""  # bytes that may be the start of a message
        self.status = None  # what followed the end mark, once found
        self.after = b""  # what followed the status in the same chunk: the start of the returned files
        self.closed = False
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pieces = []

    def feed(self, chunk):
        """What `chunk` holds, in order: the program's bytes (bytes) and display frames (Frame), up to the end mark."""
        data, items = self.held + chunk, []
        self.held = b""
        while data:
            found = [(at, mark) for mark in self.marks for at in (data.find(mark),) if at >= 0]
            at, mark = min(found) if found else (-1, b"")
            if at < 0:
                keep = 0
                if b"\0" in data[-(len(self.marks[0]) - 1) :]:  # a mark starts with NUL: most chunks end with none
                    keep = max(self._partial(data, mark) for mark in self.marks)
                items.append(data[: len(data) - keep])
                self.held = data[len(data) - keep :]
                break
            items.append(data[:at])
            message = data[at + len(mark) :]
            kind = message[:1]
            if not kind:
                self.held = data[at:]
                break
            if kind == END and mark is self.marks[0]:
                if len(message) < 1 + self.status_size:
                    self.held = data[at:]
                    break
                self.status, self.after = message[1 : 1 + self.status_size], message[1 + self.status_size :]
                break
            if kind == DISPLAY and mark is not self.marks[0]:
                frame = read_frame(message)
                if frame is None:
                    self.held = data[at:]
                    break
                if frame is not False:
                    items.append(frame[0])
                    data = message[frame[1] :]
                    continue
            items.append(mark)  # not a message of ours: the program's bytes
            data = message
        return [item for item in items if item]

    @staticmethod
    def _partial(data, mark):
        """How many bytes at the end of `data` may be the start of `mark`."""
        return next((k for k in range(min(len(mark) - 1, len(data)), 0, -1) if data.endswith(mark[:k])), 0)

    def flush(self):
        """At the end of the stream: what was held back was the program's after all."""
        held, self.held = self.held, b""
        return held

    @property
    def done(self):
        return self.closed or self.status is not None


Event = Union[Output, Display]


class Reader:
    """Turns chunks of the container's stdout and stderr into Output and Display events, and knows when the program
    ended.

    At most `max_output` bytes of output are passed on, from both streams and the displays together; past that
    `truncated` is set and the caller stops the container. A display that does not fit what is left is left out,
    with a note, and the run goes on. Every piece passed on is also kept, so `text(stream)` is the pieces joined.
    """

    def __init__(self, mark: bytes, end: bytes, max_output: int, files_room: int = 0):
        """`mark` frames displays, `end` the end marks; `files_room` is the scratch size in bytes: files follow
        stdout's end mark when it is not 0."""
        self._streams = {"stdout": _Stream(mark, end, STATUS_DIGITS, frames=True),
                         "stderr": _Stream(mark, end, 2 * USAGE_DIGITS + 1)}
        self.room = max_output
        self.truncated = False
        self._displays = Displays()
        self._files = ReturnedFiles(files_room) if files_room else None

    def feed(self, stream: str, chunk: bytes) -> List[Event]:
        """What `chunk` of `stream` holds of the program's output; an empty chunk means the stream closed."""
        state = self._streams[stream]
        if stream == "stdout" and state.status is not None:  # past the end mark: the returned files
            if self._files is not None:
                self._files.feed(chunk) if chunk else self._files.cut("the container ended first")
            return []
        if not chunk:
            state.closed = True
            return self._emit(stream, [state.flush()])
        events = self._emit(stream, state.feed(chunk))
        if state.status is not None and self._files is not None:
            self._files.feed(state.after)
        return events

    def finish(self) -> List[Event]:
        """At the very end, whatever happened: the bytes still held back, and the end of any split UTF-8 sequence."""
        events = []
        for stream, state in self._streams.items():
            events += self._emit(stream, [state.flush()], final=True)
        return events

    def done(self, stream: Optional[str] = None) -> bool:
        """True once `stream` (or both) has its end mark, and the files after it, or has closed."""
        if stream is None:
            return all(self.done(name) for name in STREAMS)
        state = self._streams[stream]
        if stream == "stdout" and self._files is not None and not state.closed and state.status is not None:
            return self._files.done
        return state.done

    @property
    def displays(self) -> List[Display]:
        """The program's displays so far, in order."""
        return self._displays.shown

    @property
    def displays_left_out(self) -> List[str]:
        """What of the program's displays did not come back, and why."""
        return self._displays.left_out

    @property
    def files(self) -> Dict[str, bytes]:
        """The files returned from out/ so far."""
        return self._files.files if self._files is not None else {}

    @property
    def files_left_out(self) -> List[str]:
        """What was not returned from out/, and why; a run stopped before its end returns no files at all."""
        if self._files is None:
            return []
        if not self.ended:
            return ["out/ was not returned: the program was stopped before its end"]
        return self._files.left_out

    def cut_files(self, why: str) -> None:
        """The files will not all come: say so."""
        if self._files is not None:
            self._files.cut(why)

    @property
    def ended(self) -> bool:
        """True once the supervisor has said the program ended (stdout's end mark, which carries the status)."""
        return self._streams["stdout"].status is not None

    @property
    def exit_code(self) -> Optional[int]:
        """The exit status in stdout's end mark; None if there was none, or the program forged one that is not a number."""
        status = self._streams["stdout"].status
        return int(status) if status is not None and status.isdigit() else None

    @property
    def cpu_time(self) -> Optional[float]:
        """The program's CPU seconds, user and system, from stderr's end mark; None if it did not come whole."""
        usage = self._usage()
        return usage[0] / 1e6 if usage else None

    @property
    def peak_memory(self) -> Optional[int]:
        """The program's peak resident memory in bytes, from stderr's end mark; None if it did not come whole."""
        usage = self._usage()
        return usage[1] if usage else None

    @property
    def leaving(self) -> bool:
        """True when the supervisor said its container ends with this program (a session: this cell ended it)."""
        status = self._streams["stderr"].status
        return status is not None and status.endswith(b"1")

    def _usage(self):
        status = self._streams["stderr"].status
        if status is None or not status.isdigit():
            return None
        return int(status[:USAGE_DIGITS]), int(status[USAGE_DIGITS : 2 * USAGE_DIGITS])

    def text(self, stream: str) -> str:
        return "".join(self._streams[stream].pieces)

    def texts(self) -> Dict[str, str]:
        return {stream: self.text(stream) for stream in STREAMS}

    def _emit(self, stream, items, final=False):
        """Output events for the program's bytes, Display events for whole displays; one budget for both."""
        events: List[Event] = []
        for item in items:
            if isinstance(item, Frame):
                display, size = self._displays.feed(item, self.room)
                if display is not None:
                    self.room -= size
                    events.append(display)
                continue
            if len(item) > self.room:
                item = item[: self.room]
                self.truncated = True
            self.room -= len(item)
            events += self._text(stream, item)
        return events + self._text(stream, b"", final=True) if final else events

    def _text(self, stream, data, final=False):
        state = self._streams[stream]
        text = state.decoder.decode(data, final)
        if not text:
            return []
        state.pieces.append(text)
        return [Output(stream, text)]
