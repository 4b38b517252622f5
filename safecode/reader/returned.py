"""The files a program returns from /app/out, read from the bytes after stdout's end mark as they come.

Framing (inside/files.py writes it): each file as F<name length:4><name><size:8><bytes>, a word on what was left
out as S<length:4><text>, and Z at the end; lengths big-endian. Whatever a hostile program forges, at most `room`
bytes and MAX_FILES files are kept, and every name must pass the same rule as the files handed in.
"""

from typing import Dict, List

from ..files import MAX_FILES, MAX_PATH, name_problem

MAX_NOTES = 50  # words on what was left out, kept at most


class ReturnedFiles:
    """The files section after stdout's end mark, parsed as it comes, within `room` bytes and MAX_FILES files."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.buffer = bytearray()
        self.files: Dict[str, bytes] = {}
        self.left_out: List[str] = []
        self.done = False

    def feed(self, data):
        if self.done:
            return
        self.buffer += data
        while not self.done and self._step():
            pass

    def cut(self, why):
        """The section ends here, unfinished."""
        if not self.done:
            self._note(f"the rest of out/ was not returned: {why}")
            self.done = True

    def _step(self):
        """Take one whole record off the buffer; False when more bytes are needed."""
        buffer = self.buffer
        kind = bytes(buffer[:1])
        if kind == b"Z":
            self.done = True
            return False
        if kind not in (b"F", b"S"):
            return bool(kind) and self._broken("unreadable")
        if len(buffer) < 5:
            return False
        size = int.from_bytes(buffer[1:5], "big")
        if size > 4 * MAX_PATH:
            return self._broken("a name or a note too long")
        if kind == b"S":
            if len(buffer) < 5 + size:
                return False
            self._note(bytes(buffer[5 : 5 + size]).decode("utf-8", "replace"))
            del buffer[: 5 + size]
            return True
        head = 13 + size
        if len(buffer) < head:
            return False
        length = int.from_bytes(buffer[5 + size : head], "big")
        if length > self.room:
            return self._broken("over the scratch size")
        if len(buffer) < head + length:
            return False
        if len(self.files) == MAX_FILES:
            return self._broken(f"over the limit of {MAX_FILES} files")
        raw_name, data = bytes(buffer[5 : 5 + size]), bytes(buffer[head : head + length])
        del buffer[: head + length]
        self.room -= length
        try:
            name = raw_name.decode("utf-8")
            problem = name_problem(name)
        except UnicodeDecodeError:
            name, problem = raw_name.decode("utf-8", "replace"), "is not valid UTF-8"
        if problem:
            self._note(f"{name!r}: its name {problem}, not returned")
        else:
            self.files[name] = data
        return True

    def _broken(self, why):
        self.cut(why)
        self.buffer = bytearray()
        return False

    def _note(self, text):
        if len(self.left_out) < MAX_NOTES:
            self.left_out.append(text)
