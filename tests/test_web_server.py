"""The web example over real HTTP, started as a user starts it: python examples/web/server.py --port 0."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import container_exists, wait_for_no_containers
from safecode import engine
from safecode.engine.endpoint import Endpoint

ENDLESS = "import socket, time\nprint(socket.gethostname(), end='', flush=True)\nwhile True: time.sleep(0.1)\n"
SERVER = os.path.join(os.path.dirname(__file__), "..", "examples", "web", "server.py")

# The module's server keeps a warm pool between tests: what must be gone is checked once it has stopped.
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_containers_after_module")]


class Server:
    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, **(env or {})},
        )
        line = self.proc.stdout.readline()
        assert "serving http://" in line, line + self.proc.stderr.read()
        self.port = int(line.split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])

    def request(self, method, path, body=None, headers=None, timeout=30):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def run(self, payload, headers=None):
        status, response_headers, body = self.request(
            "POST", "/run", json.dumps(payload), {"Content-Type": "application/json", **(headers or {})}
        )
        return status, response_headers, json.loads(body)

    def stop(self):
        """Stop the server as Ctrl-C does; return what it wrote to stderr."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        finally:
            self.proc.kill()
            _, stderr = self.proc.communicate()
        return stderr


@pytest.fixture(scope="module")
def server(no_containers_after_module):
    server = Server("--max-runs", "4")
    yield server
    stderr = server.stop()
    assert "Traceback" not in stderr


def test_port_zero_prints_the_real_port(server):
    assert server.port > 0
    status, headers, body = server.request("GET", "/")
    assert status == 200 and b"safecode" in body


def test_seeds_curl_examples(server):
    # curl -X POST /run -H "Content-Type: application/json" -d '{"code":"print(2+2)"}'
    assert server.run({"code": "print(2+2)"})[2]["output"] == "4\n"
    # Postman: { "code": "for i in range(3): print(i)" }
    status, _, answer = server.run({"code": "for i in range(3): print(i)"})
    assert status == 200 and answer["success"] is True and answer["output"] == "0\n1\n2\n"


def test_seeds_safety_examples(server):
    assert server.run({"code": "while True:\n    pass", "timeout": 1})[2]["error"] == "Execution timed out after 1 second."
    memory = server.run({"code": 'x = "a" * 1000000000\nprint("done")'})[2]
    assert memory["oom_killed"] is True and memory["success"] is False and "memory" in memory["error"].lower()
    network = server.run({"code": 'import socket\nsocket.gethostbyname("example.com")'})[2]
    assert network["success"] is False and "gaierror" in network["stderr"]
    write = server.run({"code": "with open('/tmp/test.txt','w') as f:\n    f.write('hello')\nprint('wrote')"})[2]
    assert write["success"] is False and "Read-only file system" in write["error"]


def test_bad_requests_over_http(server):
    status, _, body = server.request("POST", "/run", "code=print(1)", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and json.loads(body)["success"] is False
    status, _, body = server.request("POST", "/run", "{oops", {"Content-Type": "application/json"})
    assert status == 400 and "JSON" in json.loads(body)["error"]
    assert server.request("GET", "/nowhere")[0] == 404
    status, headers, _ = server.request("GET", "/run")
    assert status == 405 and headers["Allow"] == "POST"


def test_oversized_body_is_refused_without_reading_it(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("POST", "/run")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(50 * 1024 * 1024))
        connection.endheaders()  # and never send the 50 MB
        response = connection.getresponse()
        assert response.status == 413 and "over" in json.loads(response.read())["error"]
    finally:
        connection.close()


def test_runs_are_warm_by_default(server):
    deadline = time.monotonic() + 30
    while json.loads(server.request("GET", "/health")[2])["runs"]["ready"] < 4:
        assert time.monotonic() < deadline, "the server's pool never filled"
        time.sleep(0.05)
    before = json.loads(server.request("GET", "/health")[2])
    assert server.run({"code": "print('warm')"})[2]["output"] == "warm\n"
    after = json.loads(server.request("GET", "/health")[2])
    assert before["warm"] == 4 and after["runs"]["warm"] == before["runs"]["warm"] + 1


@pytest.mark.parametrize("wall", ["runsc", "podman", "ssh"])
def test_the_server_runs_on_each_wall(request, wall):
    where = request.getfixturevalue(f"{wall}_wall")
    flags = {"runtime": "--runtime", "engine": "--engine", "host": "--engine-host"}
    server = Server("--warm", "1", *(arg for key, value in where.items() for arg in (flags[key], value)))
    try:
        health = json.loads(server.request("GET", "/health")[2])
        assert health["ready"] and health["engine"] == Endpoint(**where).describe()
        answer = server.run({"code": "import platform; print(platform.release())"})[2]
        assert answer["success"] and (answer["output"] == "4.4.0\n") == (wall == "runsc")
    finally:
        assert "Traceback" not in server.stop()
    if "runtime" not in where:  # podman, the second engine; Docker's own is checked once the module's server stops
        assert not wait_for_no_containers(endpoint=Endpoint(**where))


def test_cold_when_asked():
    server = Server("--warm", "0")
    try:
        assert server.run({"code": "print('cold')"})[2]["output"] == "cold\n"
        report = json.loads(server.request("GET", "/health")[2])
        assert report["warm"] == 0 and report["runs"] == {"warm": 0, "cold": 1, "reused": 0, "ready": 0, "unfit": 0,
                                                          "unfit_reasons": []}
    finally:
        server.stop()


def test_reuse_serves_programs_from_the_same_containers():
    server = Server("--warm", "1", "--reuse", "50")
    try:
        hosts = {server.run({"code": "import socket; print(socket.gethostname())"})[2]["output"] for _ in range(5)}
        report = json.loads(server.request("GET", "/health")[2])
        assert len(hosts) == 1 and report["runs"]["reused"] == 4 and report["runs"]["cold"] == 0, report
    finally:
        assert "Traceback" not in server.stop()


def test_sigterm_stops_gracefully_and_removes_the_pool():
    others = set(engine.ours())  # the module's server keeps a pool of its own
    server = Server("--warm", "2")
    deadline = time.monotonic() + 30
    while json.loads(server.request("GET", "/health")[2])["runs"]["ready"] < 2:
        assert time.monotonic() < deadline, "the server's pool never filled"
        time.sleep(0.05)
    pool = set(engine.ours()) - others
    assert len(pool) == 2
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0
    server.stop()
    assert not pool & set(engine.ours())  # removed by the server itself before it exited


def test_four_one_second_programs_run_at_once(server):
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: server.run({"code": f"import time; time.sleep(1); print({i})"}), range(4)))
    elapsed = time.monotonic() - started
    assert [answer[2]["output"] for answer in answers] == ["0\n", "1\n", "2\n", "3\n"]
    assert elapsed < 3.5, f"4 one-second programs took {elapsed:.1f} s: they were not run at once"


def stream_over_http(server, code):
    """POST /run/stream on a real connection; the response and a function that reads its next event."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("POST", "/run/stream", json.dumps({"code": code}), {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type").startswith("application/x-ndjson")

    def next_event():
        while True:
            line = response.readline()
            assert line, "the stream ended without a result"
            if line.strip():  # empty lines only keep the connection checked
                return json.loads(line)

    return response, next_event


def test_stream_shows_output_before_the_program_ends(server):
    response, next_event = stream_over_http(server, "import time\nfor i in range(3):\n"
                                                    "    print(i, flush=True)\n    time.sleep(1)")
    try:
        started = time.monotonic()
        events = [next_event()]
        assert events[0]["type"] == "output" and events[0]["text"].startswith("0")
        first = time.monotonic() - started
        while events[-1]["type"] != "result":
            events.append(next_event())
        assert events[-1]["stdout"] == "0\n1\n2\n" and events[-1]["success"] is True
        assert time.monotonic() - started - first > 1.5  # the first piece came well before the end
    finally:
        response.close()


def test_a_dropped_connection_ends_the_run_and_its_container(server):
    response, next_event = stream_over_http(server, ENDLESS)
    host = next_event()["text"]
    assert container_exists(host)
    response.close()  # a closed tab
    deadline = time.monotonic() + 5  # the server notices at its next keep-alive line, within a second or two
    while container_exists(host):
        assert time.monotonic() < deadline, "the run went on after its client left"
        time.sleep(0.1)


def test_stopping_the_server_ends_the_runs_in_progress():
    server = Server("--warm", "0")
    response, next_event = stream_over_http(server, ENDLESS)
    try:
        host = next_event()["text"]
        assert "Traceback" not in server.stop()
        assert not container_exists(host)  # gone before the server exited, not at the supervisor's alarm
    finally:
        response.close()


def test_foreign_host_header_is_refused(server):
    assert server.request("GET", "/", headers={"Host": "rebound.example"})[0] == 403


def test_ipv6_loopback():
    server = Server("--host", "::1", "--warm", "0")
    try:
        connection = http.client.HTTPConnection("::1", server.port, timeout=10)
        connection.request("GET", "/health")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["ready"]
        connection.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "80000"], "not a port"),
        (["--port", "http"], "invalid _port value"),
        (["--host", "no.such.host.invalid", "--token", "t"], "cannot listen on no.such.host.invalid"),
        (["--max-runs", "0"], "--max-runs"),
        (["--warm", "-1"], "warm"),
        (["--reuse", "0"], "reuse must be"),
        (["--warm", "0", "--reuse", "5"], "reuse is for warm containers"),
        (["--timeout", "nan"], "timeout"),
    ],
)
def test_bad_command_lines_are_clear_errors(args, message):
    proc = subprocess.run([sys.executable, SERVER, *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_binding_beyond_loopback_needs_a_token():
    proc = subprocess.run([sys.executable, SERVER, "--host", "0.0.0.0", "--port", "0"], capture_output=True,
                          text=True, timeout=30, env={k: v for k, v in os.environ.items() if k != "SAFECODE_TOKEN"})
    assert proc.returncode == 2 and "SAFECODE_TOKEN" in proc.stderr and "Traceback" not in proc.stderr


def test_token_from_environment_guards_runs():
    server = Server("--host", "0.0.0.0", env={"SAFECODE_TOKEN": "t0ken"})
    try:
        assert server.run({"code": "print(1)"})[0] == 401
        assert server.run({"code": "print(1)"}, {"Authorization": "Bearer nope"})[0] == 401
        status, _, answer = server.run({"code": "print(1)"}, {"Authorization": "Bearer t0ken"})
        assert status == 200 and answer["output"] == "1\n"
        assert server.request("GET", "/health")[0] == 200
    finally:
        stderr = server.stop()
    assert "warning: listening on 0.0.0.0" in stderr
