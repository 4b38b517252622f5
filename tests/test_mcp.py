"""The MCP server as a client meets it: a real `python -m safecode mcp` process over stdio, and over Streamable HTTP,
driven by a JSON-RPC client of our own against the real engine."""

import base64
import json
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import code_folders, container_exists, wait_for_no_containers
from mcp_client import HttpServer, StdioClient, events, server_command, server_env
from safecode import engine
from safecode.engine import image
from safecode.faces.mcp.http import MAX_SESSIONS

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_containers_after_module")]
HOSTNAME = "import socket, time\nprint(socket.gethostname(), flush=True)\n"


@pytest.fixture(scope="module")
def client(no_containers_after_module):
    """One server for the module, cold runs, one program at a time and two sessions a connection."""
    made = StdioClient("--warm", "0", "--max-runs", "1", "--max-sessions", "2", "--timeout", "20")
    yield made
    code, stderr = made.close()
    assert code == 0 and "Traceback" not in stderr, stderr


def text(answer):
    """The text block of a tool result (or of the JSON-RPC answer that carries it)."""
    return answer.get("result", answer)["content"][0]["text"]


def conforms(value, schema):
    """A small check of a value against the JSON schemas the tools declare (types, required keys, enums)."""
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    python = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int,
              "boolean": bool, "null": type(None)}
    if kinds and not any(isinstance(value, python[kind]) and not (kind in ("integer", "number") and
                                                                  isinstance(value, bool)) for kind in kinds):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return set(schema.get("required", [])) <= set(value) and all(
            conforms(item, properties[key]) for key, item in value.items() if key in properties)
    if isinstance(value, list) and "items" in schema:
        return all(conforms(item, schema["items"]) for item in value)
    return True


# The protocol -----------------------------------------------------------------------------------------------

def test_the_handshake_negotiates_the_version_and_newer_clients_fall_back(client):
    discover = client.request("server/discover")
    assert discover["error"]["code"] == -32601  # so a current client falls back to initialize
    for version in ("2025-11-25", "2025-06-18", "2025-03-26"):
        assert client.initialize(version)["result"]["protocolVersion"] == version
    answer = client.initialize("1999-01-01")["result"]
    assert answer["protocolVersion"] == "2025-11-25" and answer["capabilities"] == {"tools": {"listChanged": False}}
    assert answer["serverInfo"]["name"] == "safecode" and client.request("ping")["result"] == {}


def test_only_requests_wait_for_initialize(no_containers_after_module):
    fresh = StdioClient("--warm", "0", initialize=False)
    try:
        assert fresh.request("ping")["result"] == {}
        assert fresh.request("tools/list")["error"]["code"] == -32600
        assert fresh.initialize()["result"]["protocolVersion"] == "2025-11-25"
        assert len(fresh.request("tools/list")["result"]["tools"]) == 2
    finally:
        assert fresh.close()[0] == 0


@pytest.mark.parametrize("line, code", [
    (b"{not json\n", -32700),
    (b"[1, 2]\n", -32600),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}\n', -32600),
    (b'{"jsonrpc": "2.0", "id": true, "method": "ping"}\n', -32600),
    (b'{"jsonrpc": "2.0", "id": 7, "method": 5}\n', -32600),
    (b'{"jsonrpc": "2.0", "id": 8, "method": "resources/list"}\n', -32601),
    (b'{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "rm_rf", "arguments": {}}}\n', -32602),
    (b'{"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": [1]}\n', -32602),
])
def test_bad_messages_get_json_rpc_errors(client, line, code):
    before = len(client.lines)
    client.send_raw(line)
    deadline = time.monotonic() + 10
    while len(client.lines) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    answer = json.loads(client.lines[before])
    assert answer["error"]["code"] == code and answer["jsonrpc"] == "2.0", answer
    assert client.request("ping")["result"] == {}  # and the server goes on


def test_the_tools_describe_themselves_for_a_model(client):
    tools = {tool["name"]: tool for tool in client.request("tools/list")["result"]["tools"]}
    assert set(tools) == {"run_python", "end_session"}
    run = tools["run_python"]
    for word in ("Python 3.11", "no network", "20 s", "128m", "plt.show()", "session"):
        assert word in run["description"], word
    assert run["inputSchema"]["required"] == ["code"] and run["inputSchema"]["properties"]["timeout"]["maximum"] == 20
    assert run["annotations"]["openWorldHint"] is False and "outputSchema" in tools["end_session"]


# Running ------------------------------------------------------------------------------------------------------

def test_run_python_answers_with_text_and_structured_content(client):
    answer = client.call({"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"})["result"]
    assert answer["isError"] is True  # the program did not end "ok"
    assert answer["content"][0]["text"] == "out\nstderr:\nerr\nThe program exited with status 3."
    schema = {tool["name"]: tool for tool in client.request("tools/list")["result"]["tools"]}["run_python"]
    assert conforms(answer["structuredContent"], schema["outputSchema"])
    structured = answer["structuredContent"]
    assert (structured["status"], structured["exit_code"], structured["stdout"]) == ("error", 3, "out\n")
    ok = client.call({"code": "print(input()[::-1])", "stdin": "stressed\n", "files": {"a.txt": "x"}})["result"]
    assert ok["isError"] is False and text(ok) == "desserts\n" and ok["structuredContent"]["session"] is None


def test_how_a_program_ended_is_said(client):
    answer = client.call({"code": "while True: pass", "timeout": 1})["result"]
    assert answer["isError"] and text(answer) == "Execution timed out after 1 second."
    assert answer["structuredContent"]["timed_out"] is True
    answer = client.call({"code": "x = bytearray(1 << 30)"})["result"]
    assert "Out of memory" in text(answer) and answer["structuredContent"]["oom_killed"] is True


@pytest.mark.parametrize("arguments, says", [
    ({}, '"code" is required'),
    ({"code": 5}, '"code" is required'),
    ({"code": "print(1)", "timeout": -1}, '"timeout" must be a positive number'),
    ({"code": "print(1)", "stdin": 3}, '"stdin" must be a string'),
    ({"code": "print(1)", "files": {"../up.txt": "x"}}, "'..'"),
    ({"code": "print(1)", "files": {"a": 1}}, '"files" must be an object'),
    ({"code": "print(1)", "session": "no spaces please"}, '"session" must be a name'),
    ({"code": "print(1)", "network": True}, "Unknown argument 'network'"),
])
def test_bad_arguments_are_tool_errors_a_model_can_read(client, arguments, says):
    answer = client.call(arguments)["result"]
    assert answer["isError"] is True and says in text(answer), text(answer)


def test_output_comes_as_progress_strictly_increasing(client):
    code = "import time\nfor i in range(3):\n    print(f'line {i}', flush=True)\n    time.sleep(0.3)"
    answer = client.call({"code": code}, progress="tok-1")
    assert answer["result"]["structuredContent"]["stdout"] == "line 0\nline 1\nline 2\n"
    notes = []
    while not client.notifications.empty():
        notes.append(client.notifications.get())
    mine = [note["params"] for note in notes if note["method"] == "notifications/progress"
            and note["params"]["progressToken"] == "tok-1"]
    assert "".join(note["message"] for note in mine) == "line 0\nline 1\nline 2\n"
    steps = [note["progress"] for note in mine]
    assert len(steps) >= 3 and all(later > earlier for earlier, later in zip(steps, steps[1:]))


def test_pictures_come_as_image_blocks_and_files_as_resources(no_containers_after_module):
    with_scratch = StdioClient("--warm", "0", "--scratch", "8m")
    try:
        answer = with_scratch.call({"code": "display({'image/png': b'\\x89PNG fake', 'text/plain': 'p'}, raw=True)\n"
                                            "display({'text/html': '<b>t</b>'}, raw=True)\n"
                                            "open('out/notes.txt', 'w').write('made here')\n"
                                            "open('out/chart.png', 'wb').write(b'\\x89PNG file')"})["result"]
    finally:
        with_scratch.close()
    blocks = answer["content"]
    assert [block["type"] for block in blocks] == ["text", "image", "resource", "image", "resource"]
    assert base64.b64decode(blocks[1]["data"]) == b"\x89PNG fake" and blocks[1]["mimeType"] == "image/png"
    assert blocks[2]["resource"] == {"uri": "safecode://display/2", "mimeType": "text/html", "text": "<b>t</b>"}
    assert base64.b64decode(blocks[3]["data"]) == b"\x89PNG file"
    assert blocks[4]["resource"]["text"] == "made here"
    assert answer["structuredContent"]["files"] == [{"name": "chart.png", "size": 9}, {"name": "notes.txt", "size": 9}]


def test_a_real_chart_comes_back_as_a_picture(no_containers_after_module):
    scientific = f"{image.REPOSITORY}:3.13-scientific"
    image.ensure_image(scientific)
    charts = StdioClient("--warm", "0", "--image", scientific, "--scratch", "32m", "--timeout", "60")
    try:
        tools = charts.request("tools/list")["result"]["tools"]
        assert "numpy, pandas, matplotlib and pillow" in tools[0]["description"]
        answer = charts.call({"code": "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"})["result"]
    finally:
        charts.close()
    assert answer["isError"] is False, answer
    assert base64.b64decode(answer["content"][1]["data"]).startswith(b"\x89PNG")


# Concurrency and cancellation --------------------------------------------------------------------------------

def test_a_long_call_never_blocks_ping_and_extra_calls_get_a_clear_error(client):
    slow = [client.start("tools/call", {"name": "run_python", "arguments": {"code": "import time; time.sleep(2)"}})
            for _ in range(4)]  # one slot, two waiting: the fourth is told at once
    started = time.monotonic()
    assert client.request("ping", timeout=5)["result"] == {} and time.monotonic() - started < 1
    answers = [client.answer(request_id) for request_id in slow]
    busy = [answer for answer in answers if "running 1 programs already" in text(answer)]
    assert len(busy) == 1 and busy[0]["result"]["isError"] is True
    assert sum(answer["result"]["isError"] is False for answer in answers) == 3  # the waiting ones ran in turn


def test_cancel_kills_the_container_within_a_second_and_sends_no_answer(client):
    request_id = client.start("tools/call", {"name": "run_python", "arguments": {"code": HOSTNAME + "time.sleep(60)"},
                                             "_meta": {"progressToken": "cancel-me"}})
    host = client.notifications.get(timeout=30)["params"]["message"].strip()
    assert container_exists(host)
    client.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": request_id}})
    cancelled = time.monotonic()
    while container_exists(host):
        assert time.monotonic() - cancelled < 1.5, "the container outlived its cancel"
        time.sleep(0.05)
    assert client.request("ping")["result"] == {}
    time.sleep(0.5)
    assert not any(json.loads(line).get("id") == request_id for line in client.lines)


# Sessions ---------------------------------------------------------------------------------------------------

def test_sessions_share_state_by_name_are_bounded_and_end(client):
    assert client.call({"code": "x = 41", "session": "a"})["result"]["isError"] is False
    assert text(client.call({"code": "x + 1", "session": "a"})) == "42\n"
    other = client.call({"code": "x", "session": "b"})["result"]
    assert "NameError" in text(other)
    full = client.call({"code": "1", "session": "c"})["result"]
    assert full["isError"] and "2 sessions open" in text(full)
    ended = client.call({"session": "a"}, name="end_session")["result"]
    assert ended == {"content": [{"type": "text", "text": "Session 'a' ended."}],
                     "structuredContent": {"session": "a", "ended": True}, "isError": False}
    assert client.call({"session": "a"}, name="end_session")["result"]["isError"] is True
    leaving = client.call({"code": "raise SystemExit", "session": "b"})["result"]
    assert leaving["structuredContent"]["session_ended"] is True and "Session 'b' has ended" in text(leaving)
    assert "NameError" in text(client.call({"code": "x", "session": "b"}))  # a new one
    assert client.call({"session": "b"}, name="end_session")["result"]["isError"] is False
    assert wait_for_no_containers() == []


# The client going away -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["eof", signal.SIGTERM, signal.SIGINT])
def test_a_client_that_goes_away_leaves_nothing(no_containers_after_module, how):
    leaving = StdioClient("--warm", "1")
    leaving.call({"code": "x = 1", "session": "kept"})
    request_id = leaving.start("tools/call", {"name": "run_python", "arguments": {"code": HOSTNAME + "time.sleep(60)"},
                                              "_meta": {"progressToken": 1}})
    host = leaving.notifications.get(timeout=30)["params"]["message"].strip()
    assert container_exists(host) and request_id
    started = time.monotonic()
    code, stderr = leaving.close(how)
    assert code == 0 and time.monotonic() - started < 5 and "Traceback" not in stderr, stderr
    assert wait_for_no_containers() == [] and code_folders() == []


def test_no_engine_is_a_clear_first_tool_error_not_a_hang(no_containers_after_module):
    lost = StdioClient("--warm", "1", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    try:
        started = time.monotonic()
        answer = lost.call({"code": "print(1)"}, timeout=30)["result"]
        assert answer["isError"] and "DOCKER_HOST" in text(answer) and time.monotonic() - started < 10, answer
    finally:
        assert lost.close()[0] == 0


# Streamable HTTP -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def http_server(no_containers_after_module):
    server = HttpServer("--warm", "0", "--max-sessions", "1")
    yield server
    assert server.stop() == 0


CALL = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "run_python",
                                                                       "arguments": {"code": "print(6 * 7)"}}}


def test_http_sessions_json_and_event_streams(http_server):
    session = http_server.initialize()
    assert len(session) >= 32
    assert http_server.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, session)[0] == 202
    status, headers, body = http_server.post(CALL, session, accept="application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["result"]["structuredContent"]["stdout"] == "42\n"
    streamed = {**CALL, "params": {**CALL["params"], "_meta": {"progressToken": "t"}}}
    status, headers, body = http_server.post(streamed, session)
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    progress, answer = http_server.call(session, streamed)  # the output may come in more than one piece
    assert "".join(note["params"]["message"] for note in progress) == "42\n"
    assert answer["result"]["structuredContent"]["stdout"] == "42\n"
    assert http_server.end_session(session) == 204
    assert http_server.post(CALL, session)[0] == 404


SLOW = "import time\nfor n in range(4):\n    print(n, flush=True)\n    time.sleep(0.2)\ntime.sleep(0.8)\nprint('end')"


def test_http_every_answer_reaches_the_client_however_long_the_call(http_server):
    # Long enough for keep-alive comments between the events: the stream must still end with the answer.
    session = http_server.initialize()
    try:
        for number, meta in enumerate(({"progressToken": "p"}, {}, {"progressToken": 7}), 10):
            message = {"jsonrpc": "2.0", "id": number, "method": "tools/call",
                       "params": {"name": "run_python", "arguments": {"code": SLOW}, "_meta": meta}}
            notes, answer = http_server.call(session, message)
            assert answer["result"]["structuredContent"]["stdout"] == "0\n1\n2\n3\nend\n", answer
            assert "".join(note["params"]["message"] for note in notes) == ("0\n1\n2\n3\nend\n" if meta else "")
    finally:
        http_server.end_session(session)


def test_http_a_dropped_plain_json_call_ends_its_run_within_a_second(http_server):
    session = http_server.initialize()
    call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
        "name": "run_python", "arguments": {"code": "while True: pass", "timeout": 30}}}
    connection = http_server.connect()
    connection.request("POST", "/mcp", json.dumps(call), {"Content-Type": "application/json", "Mcp-Session-Id": session,
                                                          "Accept": "application/json"})
    deadline = time.monotonic() + 30
    while not engine.ours():
        assert time.monotonic() < deadline, "the call's container never started"
        time.sleep(0.05)
    connection.sock.shutdown(socket.SHUT_RDWR)  # the client is gone mid-call, with nothing written to it yet
    connection.close()
    assert wait_for_no_containers(seconds=2) == []
    assert http_server.end_session(session) == 204


@pytest.mark.parametrize("change, status", [
    ({"session": None}, 400),
    ({"session": "not-a-session"}, 404),
    ({"headers": {"Origin": "http://evil.example"}}, 403),
    ({"headers": {"Host": "rebound.example:80"}}, 403),
    ({"headers": {"Content-Type": "text/plain"}}, 415),
    ({"headers": {"MCP-Protocol-Version": "1999-01-01"}}, 400),
    ({"message": b"{not json"}, 400),
    ({"message": b"[]"}, 400),
    ({"headers": {"Content-Length": str((8 << 20) + 1)}}, 413),
])
def test_http_bad_requests_are_4xx(http_server, change, status):
    session = http_server.initialize()
    try:
        got = http_server.post(change.get("message", CALL), change.get("session", session), change.get("headers"))
        assert got[0] == status, got
        if change.get("message") == b"{not json":
            assert json.loads(got[2])["error"]["code"] == -32700
    finally:
        http_server.end_session(session)


def test_http_get_is_405_and_sessions_are_capped(http_server):
    connection = http_server.connect()
    connection.request("GET", "/mcp")
    assert connection.getresponse().status == 405
    made = [http_server.initialize() for _ in range(MAX_SESSIONS)]
    status, _, body = http_server.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
    assert status == 503 and "MCP sessions" in json.loads(body)["error"]["message"]
    for session in made:
        assert http_server.end_session(session) == 204


def test_http_a_dropped_connection_or_a_deleted_session_ends_its_runs(http_server):
    session = http_server.initialize()
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "run_python", "arguments": {"code": HOSTNAME + "time.sleep(60)"}, "_meta": {"progressToken": 1}}}
    connection = http_server.connect()
    connection.request("POST", "/mcp", json.dumps(call), {"Content-Type": "application/json", "Mcp-Session-Id": session,
                                                          "Accept": "application/json, text/event-stream"})
    sock = connection.sock
    response = connection.getresponse()
    line = b""
    while not line.startswith(b"data: "):  # keep-alive comments may come first
        line = response.fp.readline()
    host = events(line)[0]["params"]["message"].strip()
    assert container_exists(host)
    sock.shutdown(socket.SHUT_RDWR)  # the client is gone mid-call
    sock.close()
    assert wait_for_no_containers(seconds=3) == []
    kept = http_server.post({**CALL, "params": {"name": "run_python", "arguments": {"code": "x = 1",
                                                                                     "session": "s"}}}, session)
    assert kept[0] == 200 and len(engine.ours()) == 1
    assert http_server.end_session(session) == 204
    assert wait_for_no_containers(seconds=3) == []


def test_http_beyond_loopback_needs_a_token(no_containers_after_module):
    refused = subprocess.run(server_command("--http", "--host", "0.0.0.0", "--port", "0"), capture_output=True,
                             text=True, env=server_env({"SAFECODE_TOKEN": ""}), timeout=60)
    assert refused.returncode == 2 and "set SAFECODE_TOKEN or --token" in refused.stderr
    guarded = HttpServer("--warm", "0", "--token", "s3cret")
    try:
        assert guarded.post(CALL)[0] == 401
        session = guarded.initialize({"Authorization": "Bearer s3cret"})
        status, _, body = guarded.post(CALL, session, {"Authorization": "Bearer s3cret"}, accept="application/json")
        assert status == 200 and json.loads(body)["result"]["structuredContent"]["stdout"] == "42\n"
    finally:
        assert guarded.stop() == 0


def test_http_concurrent_sessions_do_not_mix(no_containers_after_module):
    server = HttpServer("--warm", "0", "--max-sessions", "4")
    try:
        answers = {}

        def use(name):
            session = server.initialize()
            server.post({**CALL, "params": {"name": "run_python", "arguments": {"code": f"v = {name!r}",
                                                                                 "session": "x"}}}, session)
            body = server.post({**CALL, "params": {"name": "run_python", "arguments": {"code": "print(v)",
                                                                                        "session": "x"}}},
                               session, accept="application/json")[2]
            answers[name] = json.loads(body)["result"]["structuredContent"]["stdout"]

        threads = [threading.Thread(target=use, args=(name,)) for name in ("one", "two")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert answers == {"one": "one\n", "two": "two\n"}
    finally:
        assert server.stop() == 0
    assert wait_for_no_containers() == []
