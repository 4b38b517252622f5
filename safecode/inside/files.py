"""The supervisor's file and stdin plumbing, inside the container: the files the host sends in, the files the program
leaves in out/, read and written without ever following a link. Runs as the first part of the supervisor's source
(engine/shipping.py joins them), so it uses nothing but os and stat, both loaded at start-up already.

Files come in on stdin only when the engine cannot mount the host's folder (a remote engine): then /app is a tmpfs
that only the container's user may write, and these functions write the files there and make it read-only again.
Each file is <name length:4><name><size:8><bytes>, big-endian; the host has checked every name.
"""

import io
import os
import stat
import sys

APP = "/app"
OUT = "/tmp/out"  # /app/out is a link to it: one tmpfs, /tmp, holds all the scratch space
MAX_FILES = 1000
MAX_NOTES = 20


def read_line(fd=0):
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)  # byte by byte: whatever follows the go line is the program's stdin, unread
        if not byte:
            os._exit(0)
        line += byte
    return line


def read_exactly(size):
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            os._exit(0)
        data += chunk
    return data


def relay_stdin(pipe):
    """Pass the program's stdin from the host's frames on stdin (d<size>\\n<bytes>, and e\\n at its end) into `pipe`.

    The program never holds the container's stdin: it could read the host's next words there, or leave a process
    reading them. This runs in a process of its own, so the program's input never passes through the supervisor's
    memory, which the next program's process is forked from.
    """
    try:
        while True:
            line = read_line()
            if not line.startswith(b"d"):
                break
            send(read_exactly(int(line[1:])), pipe)
    except (OSError, ValueError):  # BrokenPipeError: the program stopped reading
        pass
    os._exit(0)


def send(data, fd=1):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def send_files(room, seen=None):
    """The regular files under OUT, up to `room` bytes, walked through directory descriptors so that no link is ever
    followed.

    With `seen` (a session's {path: (size, mtime)}), only files new or changed since the last call are sent.
    """
    notes, sent, left = [], 0, 0
    try:
        top = os.open(OUT, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        top = None
        notes.append("out/ is not a folder: nothing was returned")
    folders = [(top, "")] if top is not None else []
    while folders:
        folder, prefix = folders.pop()
        with os.scandir(folder) as entries:
            found = sorted((entry.name, entry.stat(follow_symlinks=False)) for entry in entries)
        for name, info in found:
            path, mode = prefix + name, info.st_mode
            if stat.S_ISDIR(mode):
                try:
                    folders.append((os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder), path + "/"))
                except OSError:
                    notes.append(f"{path!r}: not a folder any more")
                continue
            if not stat.S_ISREG(mode):
                kind = "a link" if stat.S_ISLNK(mode) else "not a regular file"
                notes.append(f"{path!r}: {kind}, not returned")
                continue
            if seen is not None:
                if seen.get(path) == (info.st_size, info.st_mtime_ns):
                    continue
                seen[path] = (info.st_size, info.st_mtime_ns)
            if sent == MAX_FILES:
                left += 1
                continue
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
            except OSError:
                notes.append(f"{path!r}: could not be opened")
                continue
            with open(fd, "rb") as file:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    notes.append(f"{path!r}: not a regular file, not returned")
                    continue
                data = file.read(room + 1)
            if len(data) > room:
                notes.append(f"{path!r}: over the scratch size, not returned")
                continue
            room -= len(data)
            sent += 1
            name_bytes = os.fsencode(path)
            send(b"F" + len(name_bytes).to_bytes(4, "big") + name_bytes + len(data).to_bytes(8, "big") + data)
        if folder is not None:
            os.close(folder)
    if left:
        notes.append(f"{left} more files: over the limit of {MAX_FILES} files, not returned")
    for note in notes[:MAX_NOTES] + ([f"and {len(notes) - MAX_NOTES} more"] if len(notes) > MAX_NOTES else []):
        text = note.encode("utf-8", "replace")
        send(b"S" + len(text).to_bytes(4, "big") + text)
    send(b"Z")


class WholeWrites(io.FileIO):
    """An unbuffered stdout or stderr (PYTHONUNBUFFERED) whose writes never lose a part: gVisor's pipes take at most
    64 KiB a write, and a text stream over a raw file drops whatever a short write left."""

    def write(self, data):
        view = memoryview(data).cast("B")
        total = len(view)
        while view:
            view = view[super().write(view) :]
        return total


def whole_writes():
    """Give the program a stdout and stderr as `python -u` does, but with WholeWrites under them."""
    for name in ("stdout", "stderr"):
        old = getattr(sys, name)
        new = io.TextIOWrapper(WholeWrites(old.fileno(), "w", closefd=False), encoding=old.encoding,
                               errors=old.errors, line_buffering=old.line_buffering, write_through=True)
        setattr(sys, name, new)
        setattr(sys, f"__{name}__", new)


def prepare_app(scratch):
    """On a tmpfs /app (a remote engine's), link out/ to the scratch space as the host does locally; read-only."""
    if scratch:
        os.symlink(OUT, APP + "/out")
    os.chmod(APP, 0o555)


def receive_files(size):
    """Read `size` bytes of files from stdin and write them under /app (replacing any of the same name)."""
    if not size:
        return  # the host mounted them
    data = read_exactly(size)
    os.chmod(APP, 0o755)
    at = 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        name = os.fsdecode(data[at + 4 : at + 4 + length])
        at += 4 + length
        length = int.from_bytes(data[at : at + 8], "big")
        body = data[at + 8 : at + 8 + length]
        at += 8 + length
        folder = APP
        for part in name.split("/")[:-1]:
            folder += "/" + part
            if not os.path.isdir(folder) or os.path.islink(folder):
                os.mkdir(folder, 0o755)  # fails on anything else already there, as it should
            os.chmod(folder, 0o755)
        path = APP + "/" + name
        if os.path.lexists(path):
            os.unlink(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
        with open(fd, "wb") as file:
            file.write(body)
    for folder, names, _ in os.walk(APP, topdown=False):  # links are listed, never followed
        for name in names:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), 0o555)
    os.chmod(APP, 0o555)
