"""What the compatible APIs share: the request as a handler sees it, JSON answers, route patterns, and a run with
the request's limits, capped by the server's."""

import base64
import binascii
import dataclasses
import json
import math
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from ...errors import SafecodeError
from ...files import name_problem
from ...limits import memory_bytes
from ..sandbox import Sandbox

Answer = Tuple[int, bytes, List[Tuple[str, str]]]
MEGABYTE = 1 << 20
SCRATCH = "64m"  # a working folder's room, when the server has no scratch space of its own
# A program's prelude: the sent files, under /app/work/ (read-only), copied into out/ (writable), which it works in.
WORKING_FOLDER = ("import os as __o, shutil as __s\nfor __n in {names!r}:\n"
                  "    __o.makedirs(__o.path.dirname('/app/out/' + __n), exist_ok=True); "
                  "__s.copyfile('/app/work/' + __n, '/app/out/' + __n)\n__o.chdir('/app/out'); del __o, __s\n")


@dataclasses.dataclass
class Request:
    """One HTTP request: header names in lower case, the query's values as lists, the route's {name} parts."""

    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes
    params: Dict[str, str] = dataclasses.field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.body.decode("utf-8"))


@dataclasses.dataclass
class Service:
    """What the APIs run with: the server's Sandbox, and its gate (run(callable) queues and runs it)."""

    sandbox: Sandbox
    run: Callable[[Callable[[], Any]], Any]
    _python: Optional[str] = None

    def python_version(self) -> str:
        """The sandbox image's Python version ("3.11.2"), asked of it once."""
        if self._python is None:
            result = self.run(lambda: self.sandbox.execute("import platform; print(platform.python_version())"))
            if result.status != "ok":
                raise SafecodeError(f"the sandbox's Python did not say its version: {result.stderr[-200:]}")
            self._python = result.stdout.strip()
        return self._python


def json_answer(status: int, value: Any, headers=()) -> Answer:
    return status, json.dumps(value).encode(), [("Content-Type", "application/json"), *headers]


def match(table: Dict[str, Dict[str, Callable]], path: str):
    """(methods, params) of the pattern in `table` that `path` fits ("/a/{id}" fits "/a/7"), or (None, {})."""
    for pattern, methods in table.items():
        regex = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "$"
        found = re.match(regex, path)
        if found:
            return methods, found.groupdict()
    return None, {}


def number(value, name, *, low=0.0) -> float:
    """A finite number above `low`; ValueError naming `name` otherwise (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= low:
        raise ValueError(f"{name} must be a number above {low:g}, not {value!r}")
    return float(value)


def decoded(text, encoding, name) -> bytes:
    """A file's content as bytes, from utf8, base64 or hex text."""
    if not isinstance(text, str):
        raise ValueError(f"{name}: its content must be a string")
    try:
        if encoding == "base64":
            return base64.b64decode(text, validate=True)
        if encoding == "hex":
            return bytes.fromhex(text)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name}: its content is not valid {encoding}") from None
    if encoding != "utf8":
        raise ValueError(f"{name}: encoding must be utf8, base64 or hex, not {encoding!r}")
    return text.encode("utf-8")


def checked_name(name) -> str:
    problem = name_problem(name) if isinstance(name, str) else "it is not a string"
    if problem:
        raise ValueError(f"file name {name!r}: {problem}")
    return name


def in_working_folder(files, service):
    """For a program that works in a writable folder holding its files, as SandboxFusion and Jobe run programs: the
    prelude to its code, the files as the sandbox takes them, and the scratch space to ask for."""
    return (WORKING_FOLDER.format(names=sorted(files)), {f"work/{name}": data for name, data in files.items()},
            None if service.sandbox.limits.scratch else SCRATCH)


def execute(service: Service, code: str, *, stdin="", timeout=None, memory: Optional[int] = None, files=None,
            scratch=None):
    """Run one program through the server's gate. `timeout` and `memory` (bytes) are capped by the server's; a
    memory below the server's runs in a cold container of that size (a warm one has the server's)."""
    sandbox = service.sandbox
    timeout = min(timeout, sandbox.limits.timeout) if timeout else None
    if memory is not None and memory < memory_bytes(sandbox.limits.memory):
        cold = Sandbox(memory=f"{max(memory // MEGABYTE, 16)}m", timeout=sandbox.limits.timeout, image=sandbox.image,
                       scratch=scratch or sandbox.limits.scratch, **dataclasses.asdict(sandbox.endpoint))
        return service.run(lambda: cold.execute(code, stdin=stdin, timeout=timeout, files=files))
    return service.run(lambda: sandbox.execute(code, stdin=stdin, timeout=timeout, files=files, scratch=scratch))
