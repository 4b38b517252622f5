"""A JSON-RPC client of the tests' own for `python -m safecode mcp`: over its stdin and stdout, or over HTTP."""

import http.client
import itertools
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading

from conftest import PACKAGE_PARENT

VERSION = "2025-11-25"


def server_command(*args):
    return [sys.executable, "-m", "safecode", "mcp", *args]


def server_env(env=None):
    return {**os.environ, "PYTHONPATH": PACKAGE_PARENT, **(env or {})}


class StdioClient:
    """A real server process; answers are matched to requests by id, notifications kept in order."""

    def __init__(self, *args, env=None, initialize=True):
        self.proc = subprocess.Popen(server_command(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=server_env(env))
        self._ids = itertools.count(1)
        self._answers = {}
        self._lock = threading.Lock()
        self.notifications = queue.Queue()
        self.lines = []  # every line the server wrote on stdout
        threading.Thread(target=self._read, daemon=True).start()
        if initialize:
            self.initialize()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            message = json.loads(line)  # stdout carries nothing but protocol
            if "id" in message and "method" not in message:
                self._box(message["id"]).put(message)
            else:
                self.notifications.put(message)

    def _box(self, request_id):
        with self._lock:
            return self._answers.setdefault(json.dumps(request_id), queue.Queue())

    def send(self, message):
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def start(self, method, params=None, request_id=None):
        request_id = next(self._ids) if request_id is None else request_id
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, **({"params": params} if params is not None
                                                                            else {})})
        return request_id

    def answer(self, request_id, timeout=60):
        return self._box(request_id).get(timeout=timeout)

    def request(self, method, params=None, timeout=60):
        return self.answer(self.start(method, params), timeout)

    def call(self, arguments, name="run_python", progress=None, timeout=60):
        params = {"name": name, "arguments": arguments}
        if progress is not None:
            params["_meta"] = {"progressToken": progress}
        return self.request("tools/call", params, timeout)

    def initialize(self, version=VERSION):
        answer = self.request("initialize", {"protocolVersion": version, "capabilities": {},
                                             "clientInfo": {"name": "safecode-tests", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def close(self, how="eof", timeout=15):
        """End the server as a client does: close its stdin (or signal it); return its exit code and stderr."""
        if how == "eof":
            self.proc.stdin.close()
        else:
            self.proc.send_signal(how)
        try:
            self.proc.wait(timeout)
        finally:
            self.proc.kill()
            self.proc.wait()
        stderr = self.proc.stderr.read().decode()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            pipe.close()
        return self.proc.returncode, stderr


class HttpServer:
    """`python -m safecode mcp --http --port 0`, and plain HTTP requests to it."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen(server_command("--http", "--port", "0", *args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=server_env(env))
        line = self.proc.stderr.readline().decode()
        match = re.search(r"http://\S+:(\d+)/mcp", line)
        assert match, line + self.proc.stderr.read().decode()
        self.port = int(match.group(1))
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # its log, never left to fill a pipe

    def connect(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def post(self, message, session=None, headers=None, accept="application/json, text/event-stream"):
        """Status, headers and body of one POST /mcp."""
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        sent = {"Content-Type": "application/json", "Accept": accept, **(headers or {})}
        if session:
            sent["Mcp-Session-Id"] = session
        connection = self.connect()
        try:
            connection.request("POST", "/mcp", body, sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def call(self, session, message, headers=None):
        """A request as the official SDK (mcp.client.streamable_http) makes and reads it: events parsed as they
        arrive, comments skipped, done at the response or error for its id; a stream that ends first is the SDK's
        "SSE stream ended without a response". Returns the notifications before the answer, and the answer."""
        connection = self.connect()
        try:
            connection.request("POST", "/mcp", json.dumps(message), {
                "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                "Mcp-Session-Id": session, **(headers or {})})
            response = connection.getresponse()
            assert response.status == 200, (response.status, response.read())
            if response.getheader("Content-Type", "").startswith("application/json"):
                return [], json.loads(response.read())
            notes = []
            for data in sse_data(response):
                reply = json.loads(data)
                if reply.get("id") == message["id"] and ("result" in reply or "error" in reply):
                    return notes, reply
                notes.append(reply)
            raise AssertionError("SSE stream ended without a response")
        finally:
            connection.close()

    def end_session(self, session):
        """DELETE the MCP session; the answer's status."""
        connection = self.connect()
        try:
            connection.request("DELETE", "/mcp", headers={"Mcp-Session-Id": session})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def initialize(self, headers=None):
        status, headers, body = self.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
            headers=headers)
        assert status == 200, body
        return headers["Mcp-Session-Id"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self.proc.kill()
            self.proc.wait()


def sse_data(response):
    """The data of each "message" event of a text/event-stream, as it arrives (the SSE rules: fields up to a blank
    line, data lines joined, comments skipped)."""
    kind, data = "message", []
    while True:
        line = response.readline()
        if not line:
            return
        line = line.decode("utf-8").rstrip("\r\n")
        if not line:
            if data and kind == "message":
                yield "\n".join(data)
            kind, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)


def events(body):
    """The JSON-RPC messages of a text/event-stream body."""
    return [json.loads(line[len(b"data: "):]) for line in body.split(b"\n") if line.startswith(b"data: ")]
