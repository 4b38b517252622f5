"""Files handed to a program and files it gives back: names checked as safe relative paths, sizes bounded.

A program's files live under /app beside main.py (read-only); with scratch on, what it leaves under /app/out comes
back. Both directions use the same rule for names, so nothing can land outside the folder it is meant for.
"""

import os
from typing import Dict, Mapping, Optional, Union

from .errors import InvalidFile

SCRIPT = "main.py"  # the program itself, in /app
MAX_FILES = 1000  # files handed in, and files given back, at most
MAX_PART = 255  # bytes in one part of a path (a file system's own limit)
MAX_PATH = 1024  # bytes in a whole path
OUT = "out"  # the folder under /app whose files come back


def name_problem(name: object) -> Optional[str]:
    """Why `name` is not a safe relative path such as "data/2024/a.json"; None when it is."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode"
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "has a control character"
    if "\\" in name:
        return "has a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if len(encoded) > MAX_PATH:
        return f"is over {MAX_PATH} bytes long"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return f"has a part that is {part!r}" if part else "has an empty part"
        if len(part.encode("utf-8")) > MAX_PART:
            return f"has a part over {MAX_PART} bytes long"
    return None


def files_in(files: Optional[Mapping[str, Union[bytes, str]]], limit: int) -> Dict[str, bytes]:
    """The files for a run, as bytes; InvalidFile (a ValueError) naming the first bad entry."""
    if files is None:
        return {}
    if not isinstance(files, Mapping):
        raise TypeError(f"files must be a mapping of names to bytes or str, not {type(files).__name__}")
    if len(files) > MAX_FILES:
        raise InvalidFile(f"<{len(files)} files>", f"are too many: at most {MAX_FILES}")
    checked, total = {}, 0
    for name, content in files.items():
        problem = name_problem(name)
        if problem is None and name == SCRIPT:
            problem = "is the program itself (main.py)"
        if problem is None and name.split("/")[0] == OUT:
            problem = "is under out/, where the program's own files go"
        if problem is None and not isinstance(content, (bytes, bytearray, str)):
            problem = f"must be bytes or str, not {type(content).__name__}"
        if problem:
            raise InvalidFile(name, problem)
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        total += len(data)
        if total > limit:
            raise InvalidFile(name, f"brings the files to {total} bytes, over the limit of {limit} (max_files)")
        checked[name] = data
    folders = {name[: at] for name in checked for at, char in enumerate(name) if char == "/"}
    clash = next((name for name in checked if name in folders), None)
    if clash is not None:
        raise InvalidFile(clash, "is both a file and a folder")
    return checked


def write_tree(directory: str, files: Mapping[str, bytes], *, mode: int = 0o644, replace: bool = False) -> None:
    """Write checked `files` under `directory`, never following a link nor leaving it; folders are made as needed."""
    root = os.path.realpath(directory)
    for name, data in files.items():
        problem = name_problem(name)
        if problem:
            raise InvalidFile(name, problem)
        path = os.path.join(root, *name.split("/"))
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        if os.path.realpath(os.path.dirname(path)) != os.path.dirname(path):
            raise InvalidFile(name, f"would land outside {directory} (through a link)")
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if replace else os.O_EXCL)
        fd = os.open(path, flags, mode)
        with open(fd, "wb") as file:
            file.write(data)
        os.chmod(path, mode)  # whatever the umask: the container's own user must read it


def pack_tree(files: Mapping[str, bytes]) -> bytes:
    """Checked `files` as the supervisor receives them on stdin (supervisor_files.receive_files)."""
    parts = []
    for name, data in files.items():
        encoded = name.encode("utf-8")
        parts += [len(encoded).to_bytes(4, "big"), encoded, len(data).to_bytes(8, "big"), data]
    return b"".join(parts)
