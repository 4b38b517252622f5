"""What the web example's requests carry and what its answers say: checked fields in, JSON out."""

import base64
import binascii
import dataclasses
import json
import sys

from safecode import Display, Output, Result, SafecodeError
from safecode.errors import DockerUnavailable, ImageNotFound, SessionEnded
from safecode.result import stop_reason

MAX_BODY = 8 << 20  # bytes of request body read, at most (files come base64-encoded in it)
HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
]


class HTTPError(Exception):
    """An answer other than 200, with a JSON body {"success": false, "error": message}."""

    def __init__(self, status, message, headers=()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, list(headers)


def event_line(event, limits):
    """One line of POST /run/stream: an output piece, a display, the result (the fields of POST /run), or the error
    that ended it.

    {"type": "output", "stream": "stdout", "text": ...}, {"type": "display", "data": {"text/plain": ...,
    "image/png": <base64>}}, {"type": "result", ...} or {"type": "error", "status": 503, "error": ...}.
    """
    if isinstance(event, Output):
        return json_line({"type": "output", "stream": event.stream, "text": event.text})
    if isinstance(event, Display):
        return json_line({"type": "display", "data": event.as_json()})
    if isinstance(event, Result):
        return json_line({"type": "result", **result_answer(event, limits)})
    if not isinstance(event, SafecodeError):
        print(f"safecode web: internal error: {event!r}", file=sys.stderr)
    error = sandbox_error(event) if isinstance(event, SafecodeError) else HTTPError(500, "Internal server error.")
    return json_line({"type": "error", "status": error.status, "error": error.message})


def no_session():
    return HTTPError(404, "No such session: it may have ended (idle too long, or a cell ended it).")


def sandbox_error(error):
    """The HTTP error for a failure of the sandbox itself (not of the program, which is a result)."""
    if isinstance(error, SessionEnded):
        return no_session()
    if isinstance(error, (DockerUnavailable, ImageNotFound)):
        return HTTPError(503, f"The sandbox is not available: {error}", [("Retry-After", "10")])
    return HTTPError(500, f"The sandbox failed: {error}")


def read_json(environ):
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


def run_fields(request, limits):
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
    fields = dict(code=code, stdin=stdin, timeout=limits.timeout, files=decoded_files(request.get("files", {})))
    return fields, limits


def decoded_files(files):
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


def result_answer(result, limits):
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
        session_ended=result.session_ended,
        files={name: base64.b64encode(data).decode() for name, data in result.files.items()},
        files_left_out=list(result.files_left_out),
        displays=[display.as_json() for display in result.displays],
        displays_left_out=list(result.displays_left_out),
    )
    return answer


def json_body(value):
    return json.dumps(value).encode()


def json_line(value):
    return json_body(value) + b"\n"


def with_defaults(headers, body):
    names = {name.lower() for name, _ in headers}
    defaults = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return headers + [(n, v) for n, v in defaults if n.lower() not in names] + HEADERS
