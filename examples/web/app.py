"""The web example's WSGI application: the page, GET /health, POST /run and POST /run/stream, and what they answer."""

import base64
import binascii
import dataclasses
import hmac
import json
import os
import sys
from http import HTTPStatus

from runs import Busy, LiveRuns, RunGate, StreamBody
from safecode import Output, Result, SafecodeError
from safecode import engine
from safecode.errors import DockerUnavailable, ImageNotFound
from safecode.result import stop_reason

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")
MAX_BODY = 8 << 20  # bytes of request body read, at most (files come base64-encoded in it)
MAX_CODE = 64 * 1024  # bytes of code accepted
MAX_FILES = 4 << 20  # bytes of files handed to a program, decoded, all together
MAX_TIMEOUT = 10.0  # seconds: a request may ask for less, never more
QUEUE_WAIT = 15.0  # seconds a request may wait for a free run slot

HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]
PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class HTTPError(Exception):
    """An answer other than 200, with a JSON body {"success": false, "error": message}."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)


class App:
    """The WSGI application: GET / (the page), GET /health, POST /run, POST /run/stream."""

    def __init__(self, sandbox, *, max_runs, max_waiting=None, token=None, allowed_hosts=None,
                 queue_wait=QUEUE_WAIT):
        self.sandbox = sandbox
        self.gate = RunGate(max_runs, max_waiting)
        self.token = token
        self.allowed_hosts = allowed_hosts  # None: any Host header (a token guards the server instead)
        self.queue_wait = queue_wait
        self.live = LiveRuns()
        with open(PAGE, "rb") as file:
            self.page = file.read()
        self.routes = {"/": {"GET": self.index}, "/health": {"GET": self.health}, "/run": {"POST": self.run},
                       "/run/stream": {"POST": self.run_stream}}

    def __call__(self, environ, start_response):
        try:
            try:
                status, body, headers = self.dispatch(environ)
            except Busy:
                raise HTTPError(503, "The server is busy running other programs; try again shortly.",
                                [("Retry-After", "2")]) from None
        except HTTPError as error:
            status, headers = error.status, error.headers
            body = _json({"success": False, "error": error.message})
        except Exception as error:  # never a traceback to the client
            print(f"safecode web: internal error: {error!r}", file=sys.stderr)
            status, headers = 500, []
            body = _json({"success": False, "error": "Internal server error."})
        if not isinstance(body, bytes):  # a stream: no length known, and never buffered
            start_response(f"{status} {HTTPStatus(status).phrase}", headers + HEADERS)
            return body
        if environ["REQUEST_METHOD"] == "HEAD":
            headers = headers + [("Content-Length", str(len(body)))]
            body = b""
        start_response(f"{status} {HTTPStatus(status).phrase}", _with_defaults(headers, body))
        return [body]

    def dispatch(self, environ):
        self.check_host(environ)
        methods = self.routes.get(environ.get("PATH_INFO") or "/")
        if methods is None:
            raise HTTPError(404, "Not found.")
        method = environ["REQUEST_METHOD"]
        handler = methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            allowed = ", ".join(sorted(set(methods) | ({"HEAD"} if "GET" in methods else set())))
            raise HTTPError(405, f"Method {method} is not allowed here.", [("Allow", allowed)])
        return handler(environ)

    def check_host(self, environ):
        """Refuse a Host header we do not serve: a page elsewhere cannot rebind its name to our loopback."""
        if self.allowed_hosts is None:
            return
        host = environ.get("HTTP_HOST", "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name not in self.allowed_hosts:
            raise HTTPError(403, "Unexpected Host header.")

    def index(self, environ):
        return 200, self.page, [("Content-Type", "text/html; charset=utf-8"), ("Content-Security-Policy", PAGE_POLICY)]

    def health(self, environ):
        limits = self.sandbox.limits
        report = {"docker": False, "image": False, "auth": self.token is not None, "max_runs": self.gate.slots,
                  "max_timeout": limits.timeout, "warm": self.sandbox.warm, "runs": self.sandbox.stats(),
                  "image_name": self.sandbox.image, "memory": limits.memory, "scratch": limits.scratch,
                  "max_files": limits.max_files}
        try:
            report["docker"] = engine.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0
            report["image"] = report["docker"] and engine.image_exists(self.sandbox.image)
        except SafecodeError as error:
            report["error"] = str(error)
        report["ready"] = report["docker"] and report["image"]
        return (200 if report["ready"] else 503), _json(report), [("Content-Type", "application/json")]

    def start(self, environ):
        """The run a POST asks for, checked (before it waits for a slot), and its limits; not started yet."""
        self.check_token(environ)
        fields, limits = _run_fields(_read_json(environ), self.sandbox.limits)
        try:
            return self.sandbox.stream(**fields), limits
        except ValueError as error:  # InvalidFile: a name or a size the sandbox refuses
            raise HTTPError(400, f'"files": {error}.') from None

    def run(self, environ):
        run, limits = self.start(environ)

        def execute():
            self.live.add(run)
            try:
                return run.result()
            finally:
                self.live.done(run)

        try:
            result = self.gate(execute, self.queue_wait)
        except SafecodeError as error:
            raise _sandbox_error(error) from None
        return 200, _json(_answer(result, limits)), [("Content-Type", "application/json")]

    def run_stream(self, environ):
        """POST /run/stream: the same request as POST /run; the answer comes as it is made (see StreamBody)."""
        run, limits = self.start(environ)
        body = StreamBody(run, lambda event: _event_line(event, limits), self.gate.acquire(self.queue_wait), self.live)
        return 200, body, [("Content-Type", "application/x-ndjson; charset=utf-8")]

    def check_token(self, environ):
        if self.token is None:
            return
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise HTTPError(401, "A valid 'Authorization: Bearer <token>' header is required.",
                            [("WWW-Authenticate", 'Bearer realm="safecode"')])


def _event_line(event, limits):
    """One line of POST /run/stream: an output piece, the result (the fields of POST /run), or the error that ended it.

    {"type": "output", "stream": "stdout", "text": ...}, {"type": "result", ...} or {"type": "error", "status": 503,
    "error": ...}.
    """
    if isinstance(event, Output):
        return _line({"type": "output", "stream": event.stream, "text": event.text})
    if isinstance(event, Result):
        return _line({"type": "result", **_answer(event, limits)})
    if not isinstance(event, SafecodeError):
        print(f"safecode web: internal error: {event!r}", file=sys.stderr)
    error = _sandbox_error(event) if isinstance(event, SafecodeError) else HTTPError(500, "Internal server error.")
    return _line({"type": "error", "status": error.status, "error": error.message})


def _sandbox_error(error):
    """The HTTP error for a failure of the sandbox itself (not of the program, which is a result)."""
    if isinstance(error, (DockerUnavailable, ImageNotFound)):
        return HTTPError(503, f"The sandbox is not available: {error}", [("Retry-After", "10")])
    return HTTPError(500, f"The sandbox failed: {error}")


def _read_json(environ):
    """The request's JSON object, read no further than MAX_BODY."""
    media_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPError(415, "Send the request as JSON, with 'Content-Type: application/json'.")
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit():
        raise HTTPError(411, "A Content-Length header is required.")
    if int(length) > MAX_BODY:
        raise HTTPError(413, f"The request body is over {MAX_BODY} bytes.")
    body = environ["wsgi.input"].read(int(length))
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "The request body is not valid JSON.") from None
    if not isinstance(request, dict):
        raise HTTPError(400, 'The request body must be a JSON object such as {"code": "print(2+2)"}.')
    return request


def _run_fields(request, limits):
    """The keywords of Sandbox.stream for this request (code, stdin, timeout, files), and the run's limits."""
    code = request.get("code")
    if not isinstance(code, str):
        raise HTTPError(400, '"code" is required and must be a string.')
    if not code.strip():
        raise HTTPError(400, '"code" is empty.')
    stdin = request.get("stdin", "")
    if not isinstance(stdin, str):
        raise HTTPError(400, '"stdin" must be a string.')
    timeout = request.get("timeout", limits.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise HTTPError(400, '"timeout" must be a positive number of seconds.')
    try:
        size = len(code.encode("utf-8"))
        stdin.encode("utf-8")
    except UnicodeEncodeError:
        raise HTTPError(400, '"code" and "stdin" must be valid Unicode text.') from None
    if size > limits.max_code:
        raise HTTPError(413, f'"code" is {size} bytes, over the limit of {limits.max_code}.')
    limits = dataclasses.replace(limits, timeout=min(float(timeout), limits.timeout))
    fields = dict(code=code, stdin=stdin, timeout=limits.timeout, files=_files(request.get("files", {})))
    return fields, limits


def _files(files):
    """The request's "files" ({name: base64}) as bytes; names are the sandbox's to check."""
    if not isinstance(files, dict) or not all(isinstance(value, str) for value in files.values()):
        raise HTTPError(400, '"files" must be an object of names to base64 strings.')
    decoded = {}
    for name, value in files.items():
        try:
            decoded[name] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPError(400, f'"files": {name!r} is not valid base64.') from None
    return decoded


def _answer(result, limits):
    """The seeds' shape ({"success", "output"} or {"success", "error"}) plus the whole result."""
    answer = {"success": result.ok}
    if result.ok:
        answer["output"] = result.stdout
    else:
        reason = stop_reason(result, limits)
        answer["error"] = reason or result.stderr or f"The program exited with code {result.exit_code}."
        answer["output"] = result.stdout
    answer.update(
        stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code, status=result.status,
        timed_out=result.timed_out, oom_killed=result.oom_killed, truncated=result.truncated,
        duration_ms=round(result.duration * 1000, 1), cpu_time=result.cpu_time, peak_memory=result.peak_memory,
        files={name: base64.b64encode(data).decode() for name, data in result.files.items()},
        files_left_out=list(result.files_left_out),
    )
    return answer


def _json(value):
    return json.dumps(value).encode()


def _line(value):
    return _json(value) + b"\n"


def _with_defaults(headers, body):
    names = {name.lower() for name, _ in headers}
    defaults = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return headers + [(n, v) for n, v in defaults if n.lower() not in names] + HEADERS
