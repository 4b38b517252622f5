"""Judge0 CE, as its v1.13.1 answers, for Python: submissions (one, or in batches; waited for, or polled by token),
languages, statuses, about and config_info, with `base64_encoded` and `fields`.

Submissions are kept in memory, at most MAX_KEPT and for MAX_AGE seconds; each runs through the server's gate on a
worker of its own, In Queue then Processing until it has its verdict, which the library's grading decides
(verdicts.judge, Judge0's own comparison). Errors are Judge0's: 422 {"field": ["..."]}, 400 and 404 {"error"}.
"""

import base64
import binascii
import collections
import datetime
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ...errors import SafecodeError
from ...limits import memory_bytes
from ...verdicts import Case, Verdict, judge, run_verdict
from ..gate import Busy
from .web import Request, execute, json_answer

VERSION = "1.13.1"
PYTHON_IDS = (71, 92, 100, 113)  # Judge0's Python ids: 3.8.1 in CE 1.13.1, and the newer releases'
MAX_KEPT = 10_000  # submissions kept
MAX_AGE = 3600.0  # seconds a submission is kept after it was made
MAX_BATCH = 20
WORKERS = 8  # submissions taken from the queue at once (each then waits for a run slot of the server's)
STATUSES = [(1, "In Queue"), (2, "Processing"), (3, "Accepted"), (4, "Wrong Answer"), (5, "Time Limit Exceeded"),
            (6, "Compilation Error"), (7, "Runtime Error (SIGSEGV)"), (8, "Runtime Error (SIGXFSZ)"),
            (9, "Runtime Error (SIGFPE)"), (10, "Runtime Error (SIGABRT)"), (11, "Runtime Error (NZEC)"),
            (12, "Runtime Error (Other)"), (13, "Internal Error"), (14, "Exec Format Error")]
BY_SIGNAL = {11: 7, 25: 8, 8: 9, 6: 10}
ENCODED = ("source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output", "message")
FIELDS = ("source_code", "language_id", "stdin", "expected_output", "stdout", "status_id", "created_at", "finished_at",
          "time", "memory", "stderr", "token", "number_of_runs", "cpu_time_limit", "cpu_extra_time", "wall_time_limit",
          "memory_limit", "stack_limit", "max_processes_and_or_threads", "enable_per_process_and_thread_time_limit",
          "enable_per_process_and_thread_memory_limit", "max_file_size", "compile_output", "exit_code", "exit_signal",
          "message", "wall_time", "compiler_options", "command_line_arguments", "redirect_stderr_to_stdout",
          "callback_url", "additional_files", "enable_network", "status", "language")
DEFAULT_FIELDS = ("stdout", "time", "memory", "stderr", "token", "compile_output", "message", "status")
REQUEST = ("source_code", "language_id", "stdin", "expected_output", "cpu_time_limit", "cpu_extra_time",
           "wall_time_limit", "memory_limit", "stack_limit", "max_processes_and_or_threads", "number_of_runs",
           "enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit", "max_file_size",
           "redirect_stderr_to_stdout", "enable_network", "callback_url", "compiler_options", "command_line_arguments",
           "additional_files")


class Invalid(Exception):
    """A request Judge0 refuses: (status, body)."""


def routes(service):
    store = Store()
    workers = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="safecode-judge0")

    def create(request: Request):
        try:
            encoded = _flag(request, "base64_encoded")
            wanted = _fields(request)
            submission = _submission(_body(request), encoded, service)
        except Invalid as invalid:
            return json_answer(*invalid.args)
        store.add(submission)
        if _flag(request, "wait"):
            _process(service, submission)
            return json_answer(201, _shown(submission, wanted, encoded))
        workers.submit(_process, service, submission)
        return json_answer(201, {"token": submission["token"]})

    def create_batch(request: Request):
        try:
            encoded = _flag(request, "base64_encoded")
            body = _body(request)
            items = body.get("submissions")
            if not isinstance(items, list) or not items:
                raise Invalid(422, {"error": "a list of submissions is required"})
            if len(items) > MAX_BATCH:
                raise Invalid(422, {"error": f"number of submissions in a batch should be less than or equal to "
                                             f"{MAX_BATCH}"})
        except Invalid as invalid:
            return json_answer(*invalid.args)
        answers = []
        for item in items:
            try:
                submission = _submission(item if isinstance(item, dict) else {}, encoded, service)
            except Invalid as invalid:
                answers.append(invalid.args[1])
                continue
            store.add(submission)
            workers.submit(_process, service, submission)
            answers.append({"token": submission["token"]})
        return json_answer(201, answers)

    def show(request: Request):
        try:
            wanted, encoded = _fields(request), _flag(request, "base64_encoded")
        except Invalid as invalid:
            return json_answer(*invalid.args)
        submission = store.get(request.params["token"])
        if submission is None:
            return json_answer(404, {"error": "submission not found"})
        return json_answer(200, _shown(submission, wanted, encoded))

    def show_batch(request: Request):
        try:
            wanted, encoded = _fields(request), _flag(request, "base64_encoded")
        except Invalid as invalid:
            return json_answer(*invalid.args)
        tokens = [token for value in request.query.get("tokens", []) for token in value.split(",") if token]
        if not tokens:
            return json_answer(400, {"error": "tokens are required"})
        found = [store.get(token) for token in tokens[:MAX_BATCH]]
        return json_answer(200, {"submissions": [_shown(item, wanted, encoded) if item else None for item in found]})

    def languages(request: Request):
        name = f"Python ({service.python_version()})"
        return json_answer(200, [{"id": number, "name": name} for number in PYTHON_IDS])

    def language(request: Request):
        number = request.params["id"]
        if not number.isdigit() or int(number) not in PYTHON_IDS:
            return json_answer(404, {"error": f"language with id {number} doesn't exist"})
        return json_answer(200, {"id": int(number), "name": f"Python ({service.python_version()})",
                                 "is_archived": False,
                                 "source_file": "script.py", "compile_cmd": None, "run_cmd": "python3 script.py"})

    return {
        "/submissions": {"POST": create}, "/submissions/": {"POST": create},
        "/submissions/batch": {"POST": create_batch, "GET": show_batch},
        "/submissions/{token}": {"GET": show},
        "/languages": {"GET": languages}, "/languages/{id}": {"GET": language},
        "/statuses": {"GET": lambda request: json_answer(200, [{"id": n, "description": d} for n, d in STATUSES])},
        "/about": {"GET": lambda request: json_answer(200, {"version": VERSION, "homepage": "safecode",
                                                            "source_code": "safecode", "maintainer": "safecode"})},
        "/config_info": {"GET": lambda request: json_answer(200, _config(service))},
    }


class Store:
    """The submissions, by token: at most MAX_KEPT, none older than MAX_AGE seconds."""

    def __init__(self):
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, submission):
        with self._lock:
            now = time.monotonic()
            while self._items and (len(self._items) >= MAX_KEPT or
                                   now - next(iter(self._items.values()))["made"] > MAX_AGE):
                self._items.popitem(last=False)
            self._items[submission["token"]] = submission

    def get(self, token):
        with self._lock:
            return self._items.get(token)


def _flag(request, name):
    return (request.query.get(name) or ["false"])[-1].lower() == "true"


def _fields(request):
    asked = (request.query.get("fields") or [",".join(DEFAULT_FIELDS)])[-1]
    if asked == "*":
        return FIELDS
    names = tuple(name.strip() for name in asked.split(",") if name.strip())
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise Invalid(400, {"error": f"invalid fields: [{', '.join(unknown)}]"})
    return names


def _body(request):
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise Invalid(415, {"error": "send the submission as JSON (Content-Type: application/json)"})
    try:
        body = request.json()
    except ValueError:
        raise Invalid(400, {"error": "the body is not valid JSON"}) from None
    if not isinstance(body, dict):
        raise Invalid(400, {"error": "the body must be a JSON object"})
    return body


def _submission(body, encoded, service):
    """A new submission (In Queue) from a request, checked as Judge0 checks one."""
    errors = {}
    language = body.get("language_id")
    if language not in PYTHON_IDS:
        errors["language_id"] = [f"language with id {language} doesn't exist" if language is not None
                                 else "can't be blank"]
    if body.get("enable_network"):
        errors["enable_network"] = ["setting enable_network is not allowed"]
    texts = {}
    for name in ("source_code", "stdin", "expected_output"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            errors[name] = ["must be a string"]
        elif value is not None and encoded:
            try:
                value = base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                errors[name] = ["is not valid base64"]
        texts[name] = value
    if not texts["source_code"]:
        errors.setdefault("source_code", ["can't be blank"])
    limits = {}
    for name in ("cpu_time_limit", "cpu_extra_time", "wall_time_limit", "memory_limit", "max_file_size"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            errors[name] = ["must be a non-negative number"]
        limits[name] = value
    if errors:
        raise Invalid(422, errors)
    now = datetime.datetime.utcnow()
    submission = {name: body.get(name) for name in REQUEST}
    submission.update(texts)
    submission.update(token=str(uuid.uuid4()), status_id=1, created_at=now, finished_at=None, made=time.monotonic(),
                      stdout=None, stderr=None, compile_output=None, message=None, exit_code=None, exit_signal=None,
                      time=None, wall_time=None, memory=None)
    return submission


def _process(service, submission):
    """Run a submission and give it Judge0's status, time and memory."""
    submission["status_id"] = 2
    limit = service.sandbox.limits.timeout
    wall = submission.get("wall_time_limit") or limit
    cpu = (submission.get("cpu_time_limit") or limit) + (submission.get("cpu_extra_time") or 0)
    memory = submission.get("memory_limit")
    try:
        while True:
            try:
                result = execute(service, submission["source_code"], stdin=submission["stdin"] or "",
                                 timeout=min(wall, cpu, limit), memory=int(memory * 1024) if memory else None)
                break
            except Busy:  # the server is busy with other requests: still in the queue
                submission["status_id"] = 1
                time.sleep(0.5)
                submission["status_id"] = 2
    except SafecodeError as error:
        submission.update(status_id=13, message=str(error), finished_at=datetime.datetime.utcnow())
        return
    expected = submission["expected_output"]
    if expected is not None:
        verdict, message, result = judge(Case(stdin=submission["stdin"] or "", expected=expected), result, "")
    else:
        verdict, message = run_verdict(result)
    signal = result.exit_code - 128 if result.exit_code and result.exit_code > 128 else None
    status = {Verdict.accepted: 3, Verdict.wrong_answer: 4, Verdict.time_limit: 5, Verdict.memory_limit: 12,
              Verdict.output_limit: 8, Verdict.sandbox_error: 13}.get(verdict)
    if status is None:  # runtime_error and syntax_error: Judge0 says NZEC for Python's, or names the signal
        status = BY_SIGNAL.get(signal, 12) if signal else 11
        message = f"Exited with error status {result.exit_code}" if not signal else None
    submission.update(
        status_id=status, stdout=result.stdout, stderr=result.stderr or None, message=message or None,
        exit_code=result.exit_code if not signal else None, exit_signal=signal,
        time=f"{result.cpu_time:.3f}" if result.cpu_time is not None else None, wall_time=f"{result.duration:.3f}",
        memory=result.peak_memory // 1024 if result.peak_memory else None, finished_at=datetime.datetime.utcnow())


def _shown(submission, wanted, encoded):
    shown = {}
    for name in wanted:
        value = submission.get(name)
        if name == "status":
            value = {"id": submission["status_id"], "description": dict(STATUSES)[submission["status_id"]]}
        elif name == "language":
            value = {"id": submission["language_id"], "name": "Python"}
        elif isinstance(value, datetime.datetime):
            value = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        elif name in ENCODED and value is not None and encoded:
            value = base64.b64encode(value.encode("utf-8")).decode()
        shown[name] = value
    return shown


def _config(service):
    limits = service.sandbox.limits
    memory_kb = memory_bytes(limits.memory) // 1024
    return {
        "maintenance_mode": False, "enable_wait_result": True, "enable_compiler_options": False,
        "allowed_languages_for_compile_options": [], "enable_command_line_arguments": False,
        "enable_submission_delete": False, "enable_callbacks": False, "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0, "enable_additional_files": False, "max_queue_size": MAX_KEPT,
        "cpu_time_limit": limits.timeout, "max_cpu_time_limit": limits.timeout, "cpu_extra_time": 0.0,
        "max_cpu_extra_time": 0.0, "wall_time_limit": limits.timeout, "max_wall_time_limit": limits.timeout,
        "memory_limit": memory_kb, "max_memory_limit": memory_kb, "stack_limit": 64000, "max_stack_limit": 128000,
        "max_processes_and_or_threads": limits.pids, "max_max_processes_and_or_threads": limits.pids,
        "enable_per_process_and_thread_time_limit": False, "allow_enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "allow_enable_per_process_and_thread_memory_limit": False, "max_file_size": 1024, "max_max_file_size": 4096,
        "number_of_runs": 1, "max_number_of_runs": 1, "redirect_stderr_to_stdout": False, "max_extract_size": 0,
        "enable_batched_submissions": True, "max_submission_batch_size": MAX_BATCH, "submission_cache_duration": 1.0,
        "use_docs_as_homepage": False, "allow_enable_network": False, "enable_network": False,
    }
