"""The web example's WSGI app, called in-process through wsgiref.validate: every answer it can give."""

import base64
import io
import json
import threading
import time
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

from conftest import container_exists
from safecode import Sandbox


def call(app, method="GET", path="/", body=b"", content_type="application/json", headers=None, length=None):
    environ = {}
    setup_testing_defaults(environ)
    environ.update(
        REQUEST_METHOD=method, PATH_INFO=path, QUERY_STRING="", HTTP_HOST="127.0.0.1:8000", CONTENT_TYPE=content_type,
        CONTENT_LENGTH=str(len(body)) if length is None else length,
    )
    environ["wsgi.input"] = io.BytesIO(body)
    environ.update(headers or {})
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=dict(response_headers))
        return lambda data: None

    chunks = validator(app)(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        chunks.close()
    return answer["status"], answer["headers"], data


def post(app, payload, path="/run", **options):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, headers, data = call(app, "POST", path, body, **options)
    return status, headers, json.loads(data)


def open_stream(app, payload, path="/run/stream"):
    """POST /run/stream through wsgiref.validate; the status, headers and the body's iterator, not yet read."""
    environ = {}
    setup_testing_defaults(environ)
    body = json.dumps(payload).encode()
    environ.update(REQUEST_METHOD="POST", PATH_INFO=path, QUERY_STRING="", HTTP_HOST="127.0.0.1",
                   CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(body)))
    environ["wsgi.input"] = io.BytesIO(body)
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=int(status.split()[0]), headers=dict(response_headers))
        return lambda data: None

    chunks = validator(app)(environ, start_response)
    return answer["status"], answer["headers"], chunks


def stream_events(app, payload):
    """Every event of a streamed run, keep-alive lines left out."""
    return stream_events_at(app, "/run/stream", payload)


def stream_events_at(app, path, payload):
    status, headers, chunks = open_stream(app, payload, path)
    try:
        lines = b"".join(chunks).split(b"\n")
    finally:
        chunks.close()
    assert status == 200 and headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def app(web):
    return web.App(Sandbox(timeout=10, max_code=web.MAX_CODE), max_runs=2, allowed_hosts={"127.0.0.1", "localhost"})


# Answers that never reach Docker -------------------------------------------------------------------------

pure = pytest.mark.pure


@pure
def test_page_is_served_with_strict_headers(app):
    status, headers, body = call(app, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<textarea" in body and b"http://" not in body.replace(b"http://localhost", b"")  # no CDN
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


@pure
def test_head_is_get_without_a_body(app):
    status, headers, body = call(app, "HEAD", "/")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000


@pure
@pytest.mark.parametrize("path", ["/nope", "/index.html", "/../../etc/passwd", "/examples/web/server.py", "/run/x"])
def test_unknown_paths_are_404(app, path):
    status, headers, body = call(app, "GET", path)
    assert status == 404 and json.loads(body) == {"success": False, "error": "Not found."}


@pure
@pytest.mark.parametrize("method, path, allow", [("GET", "/run", "POST"), ("PUT", "/run", "POST"),
                                                 ("POST", "/", "GET, HEAD"), ("DELETE", "/health", "GET, HEAD")])
def test_wrong_method_is_405_with_allow(app, method, path, allow):
    status, headers, body = call(app, method, path)
    assert status == 405 and headers["Allow"] == allow and json.loads(body)["success"] is False


@pure
@pytest.mark.parametrize(
    "payload, message",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", '"code" is required'),
        ({"code": 42}, '"code" is required'),
        ({"code": None}, '"code" is required'),
        ({"code": "   "}, '"code" is empty'),
        ({"code": "print(1)", "stdin": 5}, '"stdin" must be a string'),
        ({"code": "print(1)", "timeout": -1}, '"timeout"'),
        ({"code": "print(1)", "timeout": "10"}, '"timeout"'),
        ({"code": "print(1)", "timeout": True}, '"timeout"'),
        (b'{"code": "print(1)", "timeout": NaN}', '"timeout"'),
        (b'{"code": "\\ud800"}', "valid Unicode"),
        ({"code": "print(1)", "files": ["a.csv"]}, '"files" must be an object'),
        ({"code": "print(1)", "files": {"a.csv": 5}}, '"files" must be an object'),
        ({"code": "print(1)", "files": {"a.csv": "not base64!"}}, "'a.csv' is not valid base64"),
        ({"code": "print(1)", "files": {"../a.csv": ""}}, "'..'"),
        ({"code": "print(1)", "files": {"out/a.csv": ""}}, "out/"),
        ({"code": "print(1)", "files": {"main.py": ""}}, "program itself"),
    ],
)
@pytest.mark.parametrize("path", ["/run", "/run/stream"])
def test_bad_requests_are_400(app, payload, message, path):
    status, headers, answer = post(app, payload, path)
    assert status == 400 and answer["success"] is False and message in answer["error"]
    assert headers["Content-Type"] == "application/json"


@pure
@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_non_json_posts_are_415(app, content_type):
    status, _, answer = post(app, {"code": "print(1)"}, content_type=content_type)
    assert status == 415 and "application/json" in answer["error"]


@pure
def test_json_with_charset_is_accepted_as_json(app):
    status, _, answer = post(app, b"{bad", content_type="application/json; charset=utf-8")
    assert status == 400  # parsed as JSON, not refused as the wrong type


@pure
def test_body_over_the_cap_is_413_and_not_read(app, web):
    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")

    status, _, answer = post(app, b"x", length=str(web.MAX_BODY + 1), headers={"wsgi.input": Unreadable()})
    assert status == 413 and "over" in answer["error"]


@pure
def test_code_over_the_cap_is_413(app, web):
    status, _, answer = post(app, {"code": "#" * (web.MAX_CODE + 1)})
    assert status == 413


@pure
def test_missing_length_is_411(app):
    status, _, _ = post(app, b"{}", length="")
    assert status == 411


@pure
def test_foreign_host_is_403(app):
    status, _, body = call(app, "GET", "/", headers={"HTTP_HOST": "attacker.example:8000"})
    assert status == 403
    assert call(app, "GET", "/", headers={"HTTP_HOST": "localhost:8000"})[0] == 200


@pure
def test_token_is_required_when_set(web):
    app = web.App(Sandbox(), max_runs=1, token="s3cret")
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "s3cret"}):
        status, response_headers, answer = post(app, {"code": "print(1)"}, headers=headers)
        assert status == 401 and "Bearer" in answer["error"] and "WWW-Authenticate" in response_headers


# Answers from a real run ------------------------------------------------------------------------------------

docker = pytest.mark.usefixtures("docker")


@docker
def test_seeds_success_shape(app):
    status, _, answer = post(app, {"code": "print(2+2)"})
    assert status == 200
    assert answer["success"] is True and answer["output"] == "4\n"
    assert answer["status"] == "ok" and answer["exit_code"] == 0 and answer["stderr"] == ""
    assert set(answer) >= {"stdout", "timed_out", "oom_killed", "truncated", "duration_ms", "cpu_time", "peak_memory"}
    assert answer["cpu_time"] >= 0 and answer["peak_memory"] > 1 << 20


@docker
def test_seeds_timeout_shape_and_timeout_cap(web):
    app = web.App(Sandbox(timeout=2), max_runs=1)
    status, _, answer = post(app, {"code": "while True: pass", "timeout": 600})
    assert status == 200 and answer["success"] is False
    assert answer["error"] == "Execution timed out after 2 seconds."  # capped at the server's own maximum
    assert answer["timed_out"] is True and answer["exit_code"] is None and answer["duration_ms"] < 8000


@docker
def test_program_errors_are_200_with_the_traceback(app):
    status, _, answer = post(app, {"code": "1/0", "stdin": "ignored"})
    assert status == 200 and answer["success"] is False and answer["status"] == "error"
    assert "ZeroDivisionError" in answer["error"] and answer["exit_code"] == 1


@docker
def test_stdin_and_timeout_fields(app):
    _, _, answer = post(app, {"code": "print(input()[::-1])", "stdin": "stressed\n", "timeout": 5})
    assert answer["output"] == "desserts\n"


@docker
def test_health_reports_ready(app):
    status, _, body = call(app, "GET", "/health")
    report = json.loads(body)
    assert status == 200 and report["ready"] and report["docker"] and report["image"]


@docker
def test_health_and_run_without_docker_are_503(app, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    status, _, body = call(app, "GET", "/health")
    assert status == 503 and json.loads(body)["ready"] is False
    status, headers, answer = post(app, {"code": "print(1)"})
    assert status == 503 and "Retry-After" in headers and "Cannot connect" in answer["error"]


@docker
def test_missing_image_is_503(web):
    app = web.App(Sandbox(image="safecode-no-such-image:0"), max_runs=1)
    status, _, answer = post(app, {"code": "print(1)"})
    assert status == 503 and "safecode image" in answer["error"]


@docker
def test_too_many_runs_at_once_is_503_with_retry_after(web):
    app = web.App(Sandbox(), max_runs=1, max_waiting=0, queue_wait=0.2)
    first = threading.Thread(target=post, args=(app, {"code": "import time; time.sleep(2)"}))
    first.start()
    try:
        time.sleep(0.5)
        status, headers, answer = post(app, {"code": "print(1)"})
    finally:
        first.join()
    assert status == 503 and headers["Retry-After"] == "2" and "busy" in answer["error"]
    assert post(app, {"code": "print(1)"})[0] == 200  # and the slot is free again


# Streamed runs -----------------------------------------------------------------------------------------------


@docker
def test_stream_gives_pieces_then_the_answer_of_run(app):
    events = stream_events(app, {"code": "import sys, time\nprint('a', flush=True)\ntime.sleep(1.2)\n"
                                         "print('b', file=sys.stderr)\nsys.exit(3)"})
    *pieces, last = events
    assert {event["type"] for event in pieces} == {"output"}
    assert "".join(e["text"] for e in pieces if e["stream"] == "stdout") == "a\n"
    assert "".join(e["text"] for e in pieces if e["stream"] == "stderr") == "b\n"
    assert last["type"] == "result" and last["exit_code"] == 3 and last["success"] is False
    assert last["stdout"] == "a\n" and last["stderr"] == "b\n" and last["status"] == "error"


@docker
def test_displays_come_in_the_answer_and_on_the_stream_in_order(app):
    code = ("import sys\nsys.stdout.write('a\\n')\n"
            "display({'text/html': '<b>x</b>', 'image/png': b'PNG'}, raw=True)\nsys.stdout.write('b\\n')")
    status, _, answer = post(app, {"code": code})
    assert status == 200 and answer["stdout"] == "a\nb\n", answer
    assert answer["displays"] == [{"text/html": "<b>x</b>", "image/png": "UE5H"}] and answer["displays_left_out"] == []
    events = stream_events(app, {"code": code})
    kinds = [event["type"] for event in events]
    assert [kind for at, kind in enumerate(kinds) if not at or kind != kinds[at - 1]] == [
        "output", "display", "output", "result"]
    assert {"type": "display", "data": {"text/html": "<b>x</b>", "image/png": "UE5H"}} in events
    assert events[-1]["displays"] == answer["displays"]


@docker
def test_stream_timeout_answer(web):
    app = web.App(Sandbox(timeout=1), max_runs=1)
    last = stream_events(app, {"code": "print('x', flush=True)\nwhile True: pass"})[-1]
    assert last["timed_out"] and last["error"] == "Execution timed out after 1 second." and last["stdout"] == "x\n"


@docker
def test_stream_without_an_image_ends_with_an_error_event(web):
    app = web.App(Sandbox(image="safecode-no-such-image:0"), max_runs=1)
    (event,) = stream_events(app, {"code": "print(1)"})
    assert event["type"] == "error" and event["status"] == 503 and "safecode image" in event["error"]


@docker
def test_a_stream_holds_its_run_slot_and_closing_it_ends_the_run(web):
    app = web.App(Sandbox(), max_runs=1, max_waiting=0, queue_wait=0.2)
    status, _, chunks = open_stream(app, {"code": "import socket, time\nprint(socket.gethostname(), flush=True)\n"
                                                 "while True: time.sleep(0.1)"})
    assert status == 200
    body = iter(chunks)
    line = next(body)
    while not line.strip():
        line = next(body)
    host = json.loads(line)["text"].strip()
    assert container_exists(host)
    assert post(app, {"code": "print(1)"})[0] == 503  # the stream has the only slot
    assert post(app, {"code": "print(1)"}, "/run/stream")[0] == 503
    chunks.close()  # what the server does when the client has gone
    assert not container_exists(host)
    assert post(app, {"code": "print(1)"})[0] == 200  # and the slot is free again


@docker
def test_files_in_and_out_as_base64(web):
    app = web.App(Sandbox(scratch="8m"), max_runs=1)
    status, _, answer = post(app, {"code": "open('out/copy.bin', 'wb').write(open('in.bin', 'rb').read()[::-1])",
                                   "files": {"in.bin": base64.b64encode(b"\x00\x01\xff").decode()}})
    assert status == 200 and answer["success"], answer
    assert answer["files"] == {"copy.bin": base64.b64encode(b"\xff\x01\x00").decode()}
    assert answer["files_left_out"] == []
    last = stream_events(app, {"code": "open('out/a.txt', 'w').write('x')"})[-1]
    assert last["type"] == "result" and last["files"] == {"a.txt": "eA=="}


@pure
def test_files_over_the_limit_are_refused(web):
    app = web.App(Sandbox(max_files=10), max_runs=1)
    status, _, answer = post(app, {"code": "print(1)", "files": {"a": base64.b64encode(b"x" * 11).decode()}})
    assert status == 400 and "over the limit of 10" in answer["error"]


# Sessions ----------------------------------------------------------------------------------------------------


def create_session(app, headers=None):
    status, _, body = call(app, "POST", "/sessions", b"{}", headers=headers)
    return status, json.loads(body)


@docker
def test_a_session_keeps_state_between_runs(web):
    app = web.App(Sandbox(), max_runs=2, max_sessions=2)
    try:
        status, made = create_session(app)
        assert status == 201 and len(made["id"]) >= 32
        path = f"/sessions/{made['id']}"
        assert post(app, {"code": "x = 41"}, path + "/run")[2]["success"]
        assert post(app, {"code": "print(x + 1)"}, path + "/run")[2]["stdout"] == "42\n"
        last = stream_events_at(app, path + "/run/stream", {"code": "x"})[-1]
        assert last["type"] == "result" and last["stdout"] == "41\n" and last["session_ended"] is False
        rich = post(app, {"code": "class Html:\n    def _repr_html_(self):\n        return '<i>h</i>'\nHtml()"},
                    path + "/run")[2]
        assert rich["stdout"] == "" and rich["displays"][0]["text/html"] == "<i>h</i>"
        assert post(app, {"code": "print(x)"}, "/run")[2]["stderr"].endswith("NameError: name 'x' is not defined\n")
        assert call(app, "DELETE", path)[0] == 200
        assert post(app, {"code": "print(x)"}, path + "/run")[0] == 404
        assert call(app, "DELETE", path)[0] == 404
    finally:
        app.sessions.close_all()


@docker
def test_sessions_are_capped_bound_to_their_token_and_end_with_their_cell(web):
    app = web.App(Sandbox(timeout=1), max_runs=2, max_sessions=1, token="t0ken")
    auth = {"HTTP_AUTHORIZATION": "Bearer t0ken"}
    try:
        status, made = create_session(app, auth)
        assert status == 201
        assert create_session(app, auth)[0] == 429
        path = f"/sessions/{made['id']}/run"
        assert post(app, {"code": "print(1)"}, path, headers={"HTTP_AUTHORIZATION": "Bearer other"})[0] == 401
        stuck = post(app, {"code": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile 1: pass"},
                     path, headers=auth)[2]
        assert stuck["timed_out"] and stuck["session_ended"]
        assert post(app, {"code": "print(1)"}, path, headers=auth)[0] == 404
        assert create_session(app, auth)[0] == 201  # the ended one no longer counts
    finally:
        app.sessions.close_all()


@pure
def test_unknown_sessions_are_404(app):
    assert post(app, {"code": "print(1)"}, "/sessions/nope/run")[0] == 404
    assert call(app, "DELETE", "/sessions/nope")[0] == 404
    assert call(app, "GET", "/sessions/nope/run")[0] == 405
