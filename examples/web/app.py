"""The web example's WSGI application: its routes, the page, health, runs and sessions."""

import hmac
import os
import sys
from http import HTTPStatus
from urllib.parse import parse_qs

from messages import (
    HEADERS, MAX_BODY, HTTPError, event_line, json_body, no_session, read_json, result_answer, run_fields, sandbox_error,
    with_defaults,
)
from checks import check_fields, report_answer
from runs import LiveRuns, StreamBody
from safecode import SafecodeError
from safecode import engine
from safecode.faces.apis import fusion, jobe, judge0, piston
from safecode.faces.apis.web import Request, Service, match
from safecode.faces.gate import Busy, RunGate
from safecode.faces.options import MAX_SESSIONS
from sessions import Full, Sessions

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")
MAX_CODE = 64 * 1024  # bytes of code accepted
MAX_FILES = 4 << 20  # bytes of files handed to a program, decoded, all together
QUEUE_WAIT = 15.0  # seconds a request may wait for a free run slot
SESSION_IDLE = 300.0  # seconds without a cell after which a session ends

PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class App:
    """The WSGI application: GET / (the page), GET /health, POST /run and /run/stream, POST /check, and sessions:
    POST /sessions, POST /sessions/<id>/run and /sessions/<id>/run/stream, DELETE /sessions/<id>."""

    def __init__(self, sandbox, *, max_runs, max_waiting=None, token=None, allowed_hosts=None,
                 queue_wait=QUEUE_WAIT, max_sessions=MAX_SESSIONS, session_idle=SESSION_IDLE):
        self.sandbox = sandbox
        self.sessions = Sessions(sandbox, max_sessions, session_idle)
        self.gate = RunGate(max_runs, max_waiting)
        self.token = token
        self.allowed_hosts = allowed_hosts  # None: any Host header (a token guards the server instead)
        self.queue_wait = queue_wait
        self.live = LiveRuns()
        with open(PAGE, "rb") as file:
            self.page = file.read()
        self.routes = {
            "/": {"GET": self.index}, "/health": {"GET": self.health}, "/run": {"POST": self.run},
            "/run/stream": {"POST": self.run_stream}, "/check": {"POST": self.check},
            "/sessions": {"POST": self.create_session},
            "/sessions/<id>": {"DELETE": self.delete_session}, "/sessions/<id>/run": {"POST": self.run},
            "/sessions/<id>/run/stream": {"POST": self.run_stream},
        }
        service = Service(sandbox, lambda run: self.gate(run, self.queue_wait))
        self.apis = {**piston.routes(service), **fusion.routes(service), **judge0.routes(service),
                     **jobe.routes(service)}  # each answers in its own API's shape

    def __call__(self, environ, start_response):
        try:
            try:
                status, body, headers = self.dispatch(environ)
            except Busy:
                raise HTTPError(503, "The server is busy running other programs; try again shortly.",
                                [("Retry-After", "2")]) from None
        except HTTPError as error:
            status, headers = error.status, error.headers
            body = json_body({"success": False, "error": error.message})
        except Exception as error:  # never a traceback to the client
            print(f"safecode web: internal error: {error!r}", file=sys.stderr)
            status, headers = 500, []
            body = json_body({"success": False, "error": "Internal server error."})
        if not isinstance(body, bytes):  # a stream: no length known, and never buffered
            start_response(f"{status} {HTTPStatus(status).phrase}", headers + HEADERS)
            return body
        if environ["REQUEST_METHOD"] == "HEAD":
            headers = headers + [("Content-Length", str(len(body)))]
            body = b""
        start_response(f"{status} {HTTPStatus(status).phrase}", with_defaults(headers, body))
        return [body]

    def dispatch(self, environ):
        self.check_host(environ)
        path = environ.get("PATH_INFO") or "/"
        methods, params = match(self.apis, path)
        if methods is not None:
            return self.api(environ, methods, params)
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "sessions":  # /sessions/<id>...
            environ["safecode.session"] = parts[2]
            path = "/".join(["", "sessions", "<id>", *parts[3:]])
        methods = self.routes.get(path)
        if methods is None:
            raise HTTPError(404, "Not found.")
        method = environ["REQUEST_METHOD"]
        handler = methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            allowed = ", ".join(sorted(set(methods) | ({"HEAD"} if "GET" in methods else set())))
            raise HTTPError(405, f"Method {method} is not allowed here.", [("Allow", allowed)])
        return handler(environ)

    def api(self, environ, methods, params):
        """A request to one of the compatible APIs: its own handler answers, errors in its own shape."""
        method = environ["REQUEST_METHOD"]
        handler = methods.get("GET" if method == "HEAD" else method)
        if handler is None:
            raise HTTPError(405, f"Method {method} is not allowed here.", [("Allow", ", ".join(sorted(methods)))])
        if self.token is not None and not any(
                hmac.compare_digest(environ.get(name, "").encode(), value.encode())
                for name, value in (("HTTP_AUTHORIZATION", f"Bearer {self.token}"), ("HTTP_AUTHORIZATION", self.token),
                                    ("HTTP_X_AUTH_TOKEN", self.token))):
            raise HTTPError(401, "A valid token is required (Authorization: Bearer <token>, or X-Auth-Token).")
        length = environ.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY:
            raise HTTPError(413, f"The request body is over {MAX_BODY} bytes.")
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        request = Request(method, environ.get("PATH_INFO", ""), parse_qs(environ.get("QUERY_STRING", "")), headers,
                          environ["wsgi.input"].read(int(length)) if int(length) else b"", params)
        try:
            return handler(request)
        except SafecodeError as error:
            raise sandbox_error(error) from None

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
                  "max_files": limits.max_files, "engine": self.sandbox.endpoint.describe()}
        where = self.sandbox.endpoint
        try:
            report["docker"] = engine.docker("version", "--format", "{{.Server.Version}}", timeout=10,
                                             endpoint=where).returncode == 0
            report["image"] = report["docker"] and engine.image_exists(self.sandbox.image, where)
        except SafecodeError as error:
            report["error"] = str(error)
        report["ready"] = report["docker"] and report["image"]
        return (200 if report["ready"] else 503), json_body(report), [("Content-Type", "application/json")]

    def start(self, environ):
        """The run a POST asks for (in a session, for /sessions/<id>/...), checked before it waits for a slot, and
        its limits; not started yet."""
        self.check_token(environ)
        fields, limits = run_fields(read_json(environ), self.sandbox.limits)
        target = self.sandbox if "safecode.session" not in environ else self.session_of(environ)
        try:
            return target.stream(**fields), limits
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
            raise sandbox_error(error) from None
        return 200, json_body(result_answer(result, limits)), [("Content-Type", "application/json")]

    def check(self, environ):
        """POST /check: {"code", "cases": [{"stdin", "expected"} or {"test"}, ...], "compare", "timeout",
        "stop_on_failure"}, answered with the Report; the cases run one after another in one run slot."""
        self.check_token(environ)
        code, cases, options = check_fields(read_json(environ), self.sandbox.limits)
        try:
            report = self.gate(lambda: self.sandbox.check(code, cases, **options), self.queue_wait)
        except SafecodeError as error:
            raise sandbox_error(error) from None
        return 200, json_body(report_answer(report)), [("Content-Type", "application/json")]

    def run_stream(self, environ):
        """POST /run/stream: the same request as POST /run; the answer comes as it is made (see StreamBody)."""
        run, limits = self.start(environ)
        body = StreamBody(run, lambda event: event_line(event, limits), self.gate.acquire(self.queue_wait), self.live)
        return 200, body, [("Content-Type", "application/x-ndjson; charset=utf-8")]

    def create_session(self, environ):
        self.check_token(environ)
        read_json(environ)  # JSON only, as every POST: no cross-site form can open one
        try:
            key = self.sessions.create(environ.get("HTTP_AUTHORIZATION"))
        except Full:
            raise HTTPError(429, f"The server keeps {self.sessions.limit} sessions at most; close one or retry later.",
                            [("Retry-After", "10")]) from None
        except SafecodeError as error:
            raise sandbox_error(error) from None
        answer = {"success": True, "id": key, "idle": self.sessions.idle}
        return 201, json_body(answer), [("Content-Type", "application/json")]

    def delete_session(self, environ):
        self.check_token(environ)
        if not self.sessions.delete(environ["safecode.session"], environ.get("HTTP_AUTHORIZATION")):
            raise no_session()
        return 200, json_body({"success": True}), [("Content-Type", "application/json")]

    def session_of(self, environ):
        found = self.sessions.get(environ["safecode.session"], environ.get("HTTP_AUTHORIZATION"))
        if found is None:
            raise no_session()
        return found

    def check_token(self, environ):
        if self.token is None:
            return
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise HTTPError(401, "A valid 'Authorization: Bearer <token>' header is required.",
                            [("WWW-Authenticate", 'Bearer realm="safecode"')])
