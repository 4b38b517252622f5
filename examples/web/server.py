"""The safecode web example: one page and a JSON API (POST /run, POST /run/stream), on the standard library's wsgiref.

    python examples/web/server.py [--host 127.0.0.1] [--port 8000] [--token T] [--max-runs N]

wsgiref "has not been reviewed for security issues", so this adds what it lacks: loopback by default and a
token anywhere else, a Host check against DNS rebinding, request bodies read only up to a cap, JSON-only POSTs
(no cross-site form posts), a bounded number of runs at once, socket timeouts, and strict response headers.
"""

import argparse
import dataclasses
import hmac
import importlib.util
import ipaddress
import json
import os
import queue
import signal
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if importlib.util.find_spec("safecode") is None:  # run from a checkout: python examples/web/server.py
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from safecode import Output, Result, SafecodeError, Sandbox
from safecode import engine
from safecode.errors import DockerUnavailable, ImageNotFound
from safecode.result import stop_reason

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")
MAX_BODY = 256 * 1024  # bytes of request body read, at most
MAX_CODE = 64 * 1024  # bytes of code accepted
MAX_TIMEOUT = 10.0  # seconds: a request may ask for less, never more
QUEUE_WAIT = 15.0  # seconds a request may wait for a free run slot
KEEPALIVE = 0.5  # seconds of silence in a stream after which an empty line checks that the client is still there
END_WAIT = 30.0  # seconds a closed stream waits for its run to be gone
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")

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


class RunGate:
    """At most `slots` runs at once; a few more may wait their turn, for a bounded time; the rest are refused."""

    def __init__(self, slots, waiting=None):
        self.slots = slots
        self._running = threading.BoundedSemaphore(slots)
        self._admitted = threading.BoundedSemaphore(slots + (waiting if waiting is not None else 2 * slots))

    def acquire(self, wait):
        """Take a run slot, waiting at most `wait` seconds for one; 503 when busy. Returns the function that frees it."""
        if not self._admitted.acquire(blocking=False):
            raise _busy()
        if not self._running.acquire(timeout=wait):
            self._admitted.release()
            raise _busy()

        def release():
            self._running.release()
            self._admitted.release()

        return release

    def __call__(self, run, wait):
        release = self.acquire(wait)
        try:
            return run()
        finally:
            release()


def _busy():
    return HTTPError(503, "The server is busy running other programs; try again shortly.", [("Retry-After", "2")])


class LiveRuns:
    """The runs in progress, so that a server that stops ends them and removes their containers before it exits."""

    def __init__(self):
        self._runs = set()
        self._changed = threading.Condition()

    def add(self, run):
        with self._changed:
            self._runs.add(run)

    def done(self, run):
        with self._changed:
            self._runs.discard(run)
            self._changed.notify_all()

    def stop_all(self, wait=END_WAIT):
        """Cancel every run in progress and wait, at most `wait` seconds, until each has removed its container."""
        with self._changed:
            for run in self._runs:
                run.cancel()
            self._changed.wait_for(lambda: not self._runs, wait)


class StreamBody:
    """The body of POST /run/stream: one JSON object a line, sent as the program writes.

    {"type": "output", "stream": "stdout", "text": ...} for each piece, then {"type": "result", ...} with the fields
    of POST /run, or {"type": "error", "status": 503, "error": ...} if the sandbox itself failed. An empty line is
    sent after KEEPALIVE seconds of silence: writing it is how a dropped connection (a closed tab, a Stop button) is
    noticed. The server then calls close(), which ends the run and frees its slot.
    """

    def __init__(self, run, limits, release, live):
        self.run, self.limits, self.release = run, limits, release
        self.events = queue.Queue()
        self.ended = False
        live.add(run)

        def deliver(item):
            self.events.put(item)
            if not isinstance(item, Output):  # its last word: the container is gone
                live.done(run)

        run.forward(deliver)

    def __iter__(self):
        while not self.ended:
            try:
                item = self.events.get(timeout=KEEPALIVE)
            except queue.Empty:
                yield b"\n"
                continue
            if isinstance(item, Output):
                yield _line({"type": "output", "stream": item.stream, "text": item.text})
                continue
            self.ended = True
            if isinstance(item, Result):
                yield _line({"type": "result", **_answer(item, self.limits)})
            else:
                error = _sandbox_error(item) if isinstance(item, SafecodeError) else HTTPError(500, "Internal server error.")
                if not isinstance(item, SafecodeError):
                    print(f"safecode web: internal error: {item!r}", file=sys.stderr)
                yield _line({"type": "error", "status": error.status, "error": error.message})

    def close(self):
        try:
            if not self.ended:
                self.run.cancel()  # the client left before the end: stop the program and remove its container
                deadline = time.monotonic() + END_WAIT
                while not self.ended and time.monotonic() < deadline:
                    try:
                        self.ended = not isinstance(self.events.get(timeout=deadline - time.monotonic()), Output)
                    except queue.Empty:
                        break
        finally:
            self.release()


class App:
    """The WSGI application: GET / (the page), GET /health, POST /run."""

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
            status, body, headers = self.dispatch(environ)
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
        report = {"docker": False, "image": False, "auth": self.token is not None, "max_runs": self.gate.slots,
                  "max_timeout": self.sandbox.limits.timeout, "warm": self.sandbox.warm, "runs": self.sandbox.stats()}
        try:
            report["docker"] = engine.docker("version", "--format", "{{.Server.Version}}", timeout=10).returncode == 0
            report["image"] = report["docker"] and engine.image_exists(self.sandbox.image)
        except SafecodeError as error:
            report["error"] = str(error)
        report["ready"] = report["docker"] and report["image"]
        return (200 if report["ready"] else 503), _json(report), [("Content-Type", "application/json")]

    def run(self, environ):
        self.check_token(environ)
        request = _read_json(environ)
        code, stdin, limits = _run_fields(request, self.sandbox.limits)
        run = self.sandbox.stream(code, stdin=stdin, timeout=limits.timeout)

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
        self.check_token(environ)
        code, stdin, limits = _run_fields(_read_json(environ), self.sandbox.limits)
        run = self.sandbox.stream(code, stdin=stdin, timeout=limits.timeout)
        body = StreamBody(run, limits, self.gate.acquire(self.queue_wait), self.live)
        return 200, body, [("Content-Type", "application/x-ndjson; charset=utf-8")]

    def check_token(self, environ):
        if self.token is None:
            return
        given = environ.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            raise HTTPError(401, "A valid 'Authorization: Bearer <token>' header is required.",
                            [("WWW-Authenticate", 'Bearer realm="safecode"')])


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
    """code, stdin and the limits of this run, checked before it waits for a slot."""
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
    return code, stdin, dataclasses.replace(limits, timeout=min(float(timeout), limits.timeout))


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
        duration_ms=round(result.duration * 1000, 1),
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


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so one long program does not block every other user."""

    daemon_threads = True
    block_on_close = False


class Handler(WSGIRequestHandler):
    timeout = 30  # seconds a client may take to send its request: a slow client cannot hold a thread forever

    def log_message(self, format, *args):
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ThreadingServer6(ThreadingServer):
    address_family = socket.AF_INET6


def serve(app, host, port):
    """A threaded server for `app`; .server_port is the real port, even when port 0 was asked."""
    server_class = ThreadingServer6 if ":" in host else ThreadingServer
    return make_server(host.strip("[]"), port, app, server_class=server_class, handler_class=Handler)


def _port(text):
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(description="The safecode web example.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default %(default)s; 0 picks a free one)")
    parser.add_argument("--token", default=os.environ.get("SAFECODE_TOKEN"),
                        help="require 'Authorization: Bearer TOKEN' (default: $SAFECODE_TOKEN)")
    parser.add_argument("--max-runs", type=int, default=os.cpu_count() or 2,
                        help="programs run at once (default: the number of cores, %(default)s)")
    parser.add_argument("--timeout", type=float, default=MAX_TIMEOUT,
                        help="the longest a program may run, in seconds (default %(default)s)")
    parser.add_argument("--warm", type=int, default=None,
                        help="containers kept started, ready for a program (default: --max-runs; 0: cold runs)")
    args = parser.parse_args(argv)

    if not is_loopback(args.host):
        if not args.token:
            parser.error(f"binding to {args.host} exposes the sandbox to the network; set SAFECODE_TOKEN or --token")
        print(f"warning: listening on {args.host}: anyone who can reach it and has the token can run code",
              file=sys.stderr)
    if args.max_runs < 1:
        parser.error("--max-runs must be at least 1")
    try:
        sandbox = Sandbox(timeout=args.timeout, max_code=MAX_CODE,
                          warm=args.max_runs if args.warm is None else args.warm)
    except ValueError as error:
        parser.error(str(error))
    allowed = None if args.token else set(LOOPBACK_NAMES) | {args.host.lower()}
    app = App(sandbox, max_runs=args.max_runs, token=args.token, allowed_hosts=allowed)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop is a Ctrl-C: close the pool and go
    try:
        server = serve(app, args.host, args.port)
    except OSError as error:
        sandbox.close()
        print(f"safecode web: cannot listen on {args.host} port {args.port}: {error}", file=sys.stderr)
        return 2
    shown = f"[{args.host.strip('[]')}]" if ":" in args.host else args.host
    with sandbox, server:
        print(f"safecode web: serving http://{shown}:{server.server_port}/ "
              f"({sandbox.warm} warm containers; Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            app.live.stop_all()  # runs still going end now, and their containers go, before the pool does
    return 0


if __name__ == "__main__":
    sys.exit(main())
