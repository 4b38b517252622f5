"""The program's displays, read from the frames on its stdout (inside/display.py writes them) as they come.

    <mark>D<id: 8 hex><last: 1 or 0><length: 4 hex><payload>

The payloads of one id, joined, are a JSON object of MIME type -> content, binary forms in base64. Whatever a
hostile program writes, at most MAX_DISPLAYS displays are kept, the bytes held for displays not yet whole never
pass what is left of the output budget, and a frame that is not well formed is the program's own bytes.
"""

import base64
import binascii
import json
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

from ..result import BINARY_TYPES, TEXT_TYPES, Display

MAX_FRAME = 4096  # PIPE_BUF: a frame is written whole
HEADER = 8 + 1 + 4
MAX_DISPLAYS = 1000
MAX_PENDING = 16  # displays whose frames have begun and not ended, at once
MAX_NOTES = 20
_HEX = frozenset(b"0123456789abcdef")


class Frame(NamedTuple):
    name: bytes
    last: bool
    payload: bytes


def read_frame(message: bytes):
    """The frame at the start of `message` (which begins with the D after the mark) and the bytes it takes; None
    when more bytes are needed, False when it is not a frame of ours."""
    header = message[1 : 1 + HEADER]
    if len(header) < HEADER:
        return None
    name, last, length = header[:8], header[8:9], header[9:]
    if not set(name + length) <= _HEX or last not in (b"0", b"1") or int(length, 16) > MAX_FRAME:
        return False
    end = 1 + HEADER + int(length, 16)
    if len(message) < end:
        return None
    return Frame(name, last == b"1", message[1 + HEADER : end]), end


class Displays:
    """Frames in, whole displays out, within the room the caller says is left."""

    def __init__(self) -> None:
        self.shown: List[Display] = []
        self._pending: Dict[bytes, Optional[bytearray]] = {}  # None: being left out
        self._notes: List[str] = []
        self._over = 0

    def feed(self, frame: Frame, room: int) -> Tuple[Optional[Display], int]:
        """The display this frame completes, if any, and the bytes it took of the room."""
        if frame.name not in self._pending and len(self._pending) >= MAX_PENDING:
            self._pending[frame.name] = None
            self._note(f"more than {MAX_PENDING} displays written at once: one left out")
        part = self._pending.setdefault(frame.name, bytearray())
        if part is not None:
            held = sum(len(each) for each in self._pending.values() if each is not None)
            if held + len(frame.payload) > room:
                self._pending[frame.name] = part = None
                self._note(f"a display of more than {room} bytes: over the output limit, left out")
            else:
                part += frame.payload
        if not frame.last:
            return None, 0
        del self._pending[frame.name]
        if part is None:
            return None, 0
        if len(self.shown) == MAX_DISPLAYS:
            self._over += 1
            return None, 0
        display = decode(bytes(part))
        if display is None:
            self._note("a display that is not a JSON object of MIME types: left out")
            return None, 0
        self.shown.append(display)
        return display, len(part)

    @property
    def left_out(self) -> List[str]:
        over = [f"{self._over} more displays: over the limit of {MAX_DISPLAYS}, left out"] if self._over else []
        return self._notes + over

    def _note(self, text):
        if len(self._notes) < MAX_NOTES:
            self._notes.append(text)


def decode(payload: bytes) -> Optional[Display]:
    """A display's JSON as a Display, keeping the forms of the known MIME types that have the right kind."""
    try:
        bundle = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(bundle, dict):
        return None
    data: Dict[str, Union[str, bytes]] = {}
    for mime, value in bundle.items():
        if not isinstance(value, str):
            continue
        if mime in TEXT_TYPES:
            data[mime] = value
        elif mime in BINARY_TYPES:
            try:
                data[mime] = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
    return Display(data) if data else None
