"""Jobe (trampgeek/jobe), CodeRunner's sandbox, for Python 3, under /jobe/index.php/restapi/: GET languages, POST
runs, PUT and HEAD files/{id}, with Jobe's outcomes and its errors as JSON strings.

As Jobe does, the program runs as `python3 [interpreterargs] SOURCEFILENAME [runargs]` in a writable working
folder (out/, scratch space) that holds it and its support files; a syntax error is a compile error (11). Support
files are kept in memory, bounded in number, size and age.
"""

import base64
import binascii
import collections
import shlex
import threading
import time

from ...errors import SafecodeError
from ...verdicts import Verdict, run_verdict
from ..gate import Busy
from .web import MEGABYTE, Request, checked_name, execute, in_working_folder, json_answer

BASE = "/jobe/index.php/restapi"
OVERLOAD_TEST = "!** TESTING OVERLOAD EXCEPTION **!"  # Jobe's own hack: answer as if overloaded
OUTCOMES = {Verdict.accepted: 15, Verdict.syntax_error: 11, Verdict.runtime_error: 12, Verdict.time_limit: 13,
            Verdict.memory_limit: 17, Verdict.output_limit: 12, Verdict.sandbox_error: 20}
MAX_FILES, MAX_FILE_BYTES, FILE_AGE = 1000, 64 * MEGABYTE, 3600.0


def routes(service):
    files = Files()

    def languages(request: Request):
        return json_answer(200, [["python3", service.python_version()]])

    def runs(request: Request):
        try:
            spec = request.json().get("run_spec")
        except (ValueError, AttributeError):
            return json_answer(400, "Missing or invalid run_spec parameter")
        if not isinstance(spec, dict):
            return json_answer(400, "Missing or invalid run_spec parameter")
        for name in ("language_id", "sourcecode"):
            if name not in spec:
                return json_answer(400, f"run_spec is missing the required attribute '{name}'")
        if spec["language_id"] != "python3":
            return json_answer(400, f"Language '{spec['language_id']}' is not known")
        if spec["sourcecode"] == OVERLOAD_TEST:
            return json_answer(200, _outcome(21))
        try:
            job = _job(spec, service, files)
        except LookupError:
            return json_answer(404, "One or more of the specified files is missing/unavailable")
        except ValueError as error:
            return json_answer(400, str(error))
        try:
            result = execute(service, **job)
        except Busy:
            return json_answer(200, _outcome(21))
        except SafecodeError as error:
            return json_answer(200, _outcome(20, stderr=str(error)))
        outcome = OUTCOMES[run_verdict(result)[0]]
        if outcome == 11:
            return json_answer(200, _outcome(11, cmpinfo=result.stderr))
        return json_answer(200, _outcome(outcome, stdout=result.stdout, stderr=result.stderr))

    def put_file(request: Request):
        try:
            content = base64.b64decode(request.json()["file_contents"], validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return json_answer(400, "put: missing file_contents parameter")
        if not files.put(request.params["id"], content):
            return json_answer(403, "put: the server keeps no more files")
        return 204, b"", []

    def head_file(request: Request):
        return (204 if files.get(request.params["id"]) is not None else 404), b"", []

    return {f"{BASE}/languages": {"GET": languages}, f"{BASE}/runs": {"POST": runs}, f"{BASE}/runs/": {"POST": runs},
            f"{BASE}/files/{{id}}": {"PUT": put_file, "HEAD": head_file, "GET": head_file}}


class Files:
    """Support files by id, in memory: at most MAX_FILES, MAX_FILE_BYTES in all, none older than FILE_AGE."""

    def __init__(self):
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def put(self, key, content):
        with self._lock:
            self._items.pop(key, None)
            while self._items and (len(self._items) >= MAX_FILES or self._size() + len(content) > MAX_FILE_BYTES
                                   or time.monotonic() - next(iter(self._items.values()))[1] > FILE_AGE):
                self._items.popitem(last=False)
            if len(content) > MAX_FILE_BYTES:
                return False
            self._items[key] = (content, time.monotonic())
            return True

    def get(self, key):
        with self._lock:
            found = self._items.get(key)
            return found[0] if found is not None else None

    def _size(self):
        return sum(len(content) for content, _ in self._items.values())


def _job(spec, service, files):
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError("parameters must be an object")
    cputime = parameters.get("cputime")
    if cputime is not None and (isinstance(cputime, bool) or not isinstance(cputime, (int, float)) or cputime <= 0):
        raise ValueError("cputime must be a positive number")
    if cputime is not None and cputime > service.sandbox.limits.timeout:
        raise ValueError("cputime exceeds maximum allowed on this Jobe server")
    name = checked_name(spec.get("sourcefilename") or "prog.py")
    sent = {name: spec["sourcecode"]}
    for entry in spec.get("file_list") or []:
        if not isinstance(entry, list) or len(entry) != 2:
            raise ValueError("file_list must be a list of [file id, file name] pairs")
        content = files.get(entry[0])
        if content is None:
            raise LookupError(entry[0])
        sent[checked_name(entry[1])] = content
    try:
        interpreter = [part for arg in parameters.get("interpreterargs") or [] for part in shlex.split(str(arg))]
    except ValueError as error:
        raise ValueError(f"interpreterargs: {error}") from None
    runargs = [str(arg) for arg in parameters.get("runargs") or []]
    memory = parameters.get("memorylimit")
    stdin = spec.get("input") or ""
    if not isinstance(stdin, str) or not isinstance(spec["sourcecode"], str):
        raise ValueError("sourcecode and input must be strings")
    prelude, sent, scratch = in_working_folder(sent, service)
    run = f"__import__('os').execvp('python3', {['python3', *interpreter, name, *runargs]!r})\n"  # as Jobe runs it
    return {"code": prelude + run, "stdin": stdin, "files": sent, "timeout": cputime, "scratch": scratch,
            "memory": int(memory) * MEGABYTE if isinstance(memory, int) and memory > 0 else None}


def _outcome(outcome, stdout="", stderr="", cmpinfo=""):
    return {"run_id": None, "outcome": outcome, "cmpinfo": cmpinfo, "stdout": stdout, "stderr": stderr}
