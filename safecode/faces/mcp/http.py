"""MCP over Streamable HTTP at /mcp, on the standard library's http.server.

POST carries one JSON-RPC message. A request is answered as application/json, or, when the client accepts it, as a
text/event-stream that carries the call's progress and then its answer; a notification gets 202. initialize issues
an Mcp-Session-Id, required on every later request; DELETE ends the session; GET is 405 (the server starts nothing
on its own). A client that goes away mid-call (its connection dropped) or ends its session has its runs killed and
its sessions ended. Guarded as the web example is: Origin and Host checked (a page rebinding its name to 127.0.0.1
is refused), a bearer token required beyond loopback, bodies and sessions capped, slow clients timed out.
"""

import hmac
import json
import queue
import secrets
import select
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from ..options import LOOPBACK_NAMES
from .rpc import INVALID_REQUEST, VERSIONS, Connection, RPCError, decode, error

PATH = "/mcp"
MAX_BODY = 8 << 20  # bytes of one POST
MAX_SESSIONS = 32  # MCP sessions at once
SESSION_IDLE = 1800.0  # seconds after which an MCP session nobody uses is ended
KEEPALIVE = 0.5  # seconds of silence after which a stream is written to (or the client looked at), to find it gone


class Sessions:
    """The MCP sessions of the server: id -> Connection, each bound to the token that made it."""

    def __init__(self, tools):
        self.tools = tools
        self._live = {}  # id -> [connection, token, last used]
        self._lock = threading.Lock()

    def create(self, token):
        with self._lock:
            self._prune()
            if len(self._live) >= MAX_SESSIONS:
                return None, None
            key = secrets.token_urlsafe(24)
            connection = Connection(self.tools)
            self._live[key] = [connection, token, time.monotonic()]
        return key, connection

    def get(self, key, token):
        with self._lock:
            self._prune()
            found = self._live.get(key)
            if found is None or not hmac.compare_digest((found[1] or "").encode(), (token or "").encode()):
                return None
            found[2] = time.monotonic()
            return found[0]

    def end(self, key):
        with self._lock:
            found = self._live.pop(key, None)
        if found is not None:
            found[0].close()
        return found is not None

    def close_all(self):
        with self._lock:
            live, self._live = [found[0] for found in self._live.values()], {}
        for connection in live:
            connection.close()

    def _prune(self):
        now = time.monotonic()
        for key, found in list(self._live.items()):
            if now - found[2] > SESSION_IDLE:
                del self._live[key]
                threading.Thread(target=found[0].close, daemon=True).start()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, tools, token, host_names):
        self.sessions = Sessions(tools)
        self.token, self.host_names = token, host_names
        super().__init__(address, Handler)


class Server6(Server):
    address_family = socket.AF_INET6


def serve(tools, host, port, token=None):
    """A threaded Streamable HTTP server for `tools`; .server_port is the real port, even when port 0 was asked."""
    names = {name.strip("[]") for name in LOOPBACK_NAMES} | {host.strip("[]").lower()}
    kind = Server6 if ":" in host else Server
    return kind((host.strip("[]"), port), tools, token, names)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send its request

    def log_message(self, format, *args):
        sys.stderr.write(f"safecode mcp: {self.address_string()} {format % args}\n")

    def do_GET(self):
        self.checked() and self.refuse(405, "This server sends nothing unasked: POST requests to /mcp.",
                                       [("Allow", "POST, DELETE")])

    do_PUT = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def do_DELETE(self):
        if not self.checked():
            return
        key = self.headers.get("Mcp-Session-Id")
        if not key:
            return self.refuse(400, "An Mcp-Session-Id header is required.")
        if self.server.sessions.get(key, self.headers.get("Authorization")) is None:
            return self.refuse(404, "No such session.")
        self.server.sessions.end(key)
        return self.answer(204, b"")

    def do_POST(self):
        if not self.checked():
            return None
        if self.headers.get_content_type() != "application/json":
            return self.refuse(415, "Send JSON-RPC as 'Content-Type: application/json'.")
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return self.refuse(411, "A Content-Length header is required.")
        if int(length) > MAX_BODY:
            return self.refuse(413, f"The body is over {MAX_BODY} bytes.")
        try:
            message = decode(self.rfile.read(int(length)))
        except RPCError as failure:
            return self.rpc_error(400, failure.code, failure.message)
        if not isinstance(message, dict):
            return self.rpc_error(400, INVALID_REQUEST, "Invalid request: one JSON-RPC message per POST, no batches.")
        version = self.headers.get("MCP-Protocol-Version")
        if version is not None and version not in VERSIONS:
            return self.rpc_error(400, INVALID_REQUEST, f"Unsupported MCP-Protocol-Version {version!r}.")
        token = self.headers.get("Authorization")
        key = self.headers.get("Mcp-Session-Id")
        if message.get("method") == "initialize" and "id" in message:
            key, connection = self.server.sessions.create(token)
            if connection is None:
                return self.rpc_error(503, INVALID_REQUEST, "The server keeps as many MCP sessions as it may; "
                                                            "end one (DELETE) or retry later.")
        elif not key:
            return self.rpc_error(400, INVALID_REQUEST, "An Mcp-Session-Id header is required: send initialize first.")
        else:
            connection = self.server.sessions.get(key, token)
            if connection is None:
                return self.rpc_error(404, INVALID_REQUEST, "No such session: it ended; send initialize again.")
        if "id" not in message:
            connection.handle(message, lambda reply: None)
            return self.answer(202, b"", [("Mcp-Session-Id", key)])
        streamed = "text/event-stream" in self.headers.get("Accept", "") and message.get("method") == "tools/call"
        return self.respond(connection, message, key, streamed)

    def respond(self, connection, message, key, streamed):
        """Handle the request on a thread of its own and send what it says, here, as it comes; if the client goes
        away first, its call is cancelled (and its container removed) before this returns."""
        replies = queue.Queue()
        worker = threading.Thread(target=lambda: (connection.handle(message, replies.put), replies.put(None)),
                                  name="safecode-mcp-request", daemon=True)
        worker.start()
        headers = [("Mcp-Session-Id", key)]
        if streamed:
            self.send_response(200)
            for name, value in headers + [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store"),
                                          ("Connection", "close")]:
                self.send_header(name, value)
            self.end_headers()
            self.close_connection = True
        answer, gone = None, False
        while True:
            try:
                reply = replies.get(timeout=KEEPALIVE)
            except queue.Empty:
                if not gone and (not self.sent(b": keepalive\n\n") if streamed else self.client_gone()):
                    gone = True
                    connection.cancel(message["id"])
                continue
            if reply is None:
                break
            if streamed and not gone:
                gone = gone or not self.sent(b"event: message\ndata: " + json.dumps(reply).encode() + b"\n\n")
            elif "method" not in reply:
                answer = reply
        worker.join()
        if not streamed and not gone:
            if answer is None:  # cancelled by the client: no answer is sent for it
                return self.answer(204, b"", headers)
            return self.answer(200, json.dumps(answer).encode(), headers + [("Content-Type", "application/json")])
        return None

    def sent(self, data):
        """Write to the client; False if it is gone."""
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            return False

    def client_gone(self):
        """Whether the client closed its connection (it sends nothing more while it waits for its answer)."""
        try:
            if not select.select([self.connection], [], [], 0)[0]:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def checked(self):
        """The path, the Host and Origin headers and the token: a refusal is sent (False) when one is wrong."""
        if urlsplit(self.path).path != PATH:
            return self.refuse(404, f"Not found: MCP is at {PATH}.")
        host = (self.headers.get("Host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.server.token is None and name.strip("[]") not in self.server.host_names:
            return self.refuse(403, "Unexpected Host header.")
        origin = self.headers.get("Origin")
        if origin is not None and (urlsplit(origin).hostname or "") not in self.server.host_names:
            return self.refuse(403, "Requests from this origin are refused.")
        if self.server.token is not None:
            given = self.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode()):
                return self.refuse(401, "A valid 'Authorization: Bearer <token>' header is required.",
                                   [("WWW-Authenticate", 'Bearer realm="safecode"')])
        return True

    def rpc_error(self, status, code, message):
        return self.answer(status, json.dumps(error(None, code, message)).encode(), [("Content-Type",
                                                                                       "application/json")])

    def refuse(self, status, message, headers=()):
        self.close_connection = True  # whatever of the request was not read is not taken for the next one
        self.answer(status, json.dumps({"error": message}).encode(), [("Content-Type", "application/json"),
                                                                      *headers])
        return False

    def answer(self, status, body, headers=()):
        self.send_response(status, HTTPStatus(status).phrase)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body and self.command != "HEAD":
            self.sent(body)
